#!/usr/bin/env bash
# Rebuilds the committed prebuild (prebuilds/linux-x64/*.glibc.node) from the
# tree, offline, for this Node's N-API. It embeds the source hash, so the
# prebuild test fails until this is re-run after any change to bpf/ or native/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/build-deps.sh >/dev/null
source scripts/node-env.sh
npx prebuildify --napi --strip --tag-libc -t "$(node -p process.versions.node)"
# the exec guardian `witness run` starts agents through (native/exec_shim.c): an
# install without a compiler must get it too, next to the .node
install -m 0755 build/Release/witness-exec "prebuilds/linux-$(node -p process.arch)/witness-exec"
ls -l prebuilds/linux-x64/
echo "prebuild source hash: $(node scripts/source-hash.mjs)"
