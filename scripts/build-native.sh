#!/usr/bin/env bash
# The addon (build/Release/agent_witness.node): node-gyp rebuild against the headers of the Node
# that runs (scripts/node-env.sh), offline. `npm run build:native` always rebuilds.
#   --if-changed  skip when the last build had the same inputs: every file under bpf/ and
#                 native/, the build scripts, binding.gyp, the static deps' stamp, the kernel's
#                 BTF (vmlinux.h is generated from it), the Node version and its headers' path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/node-env.sh
stamp_file=build/.inputs-sha256
addon=build/Release/agent_witness.node

inputs_hash() {
  {
    find bpf native -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum binding.gyp scripts/build-bpf.sh scripts/gen-native.sh scripts/build-deps.sh scripts/deps.lock
    cat deps/out/.stamp 2>/dev/null || echo no-deps
    sha256sum /sys/kernel/btf/vmlinux 2>/dev/null || echo no-btf
    echo "node $(node -p 'process.version + " " + process.versions.modules') $npm_config_nodedir"
  } | sha256sum | cut -d' ' -f1
}

want=$(inputs_hash)
if [[ ${1:-} == --if-changed && -f $addon && -f $stamp_file && $(cat "$stamp_file") == "$want" ]]; then
  echo "addon: $addon is current (inputs unchanged); not rebuilt"
  exit 0
fi
rm -f "$stamp_file"
npx node-gyp rebuild --nodedir="$npm_config_nodedir"
echo "$want" >"$stamp_file"
echo "addon: built $addon against $npm_config_nodedir/include/node"
