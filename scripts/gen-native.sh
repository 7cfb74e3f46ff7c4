#!/usr/bin/env bash
# Run by binding.gyp at configure time: BPF object + skeleton + source hash
# into gen/. Prints only "gen" on stdout (gyp reads it as a variable).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build-bpf.sh" "$root/gen" >&2
node "$root/scripts/source-hash.mjs" --write "$root/gen/source_hash.h" >&2
echo gen
