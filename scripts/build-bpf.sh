#!/usr/bin/env bash
# Compiles bpf/witness.bpf.c (CO-RE) and generates the libbpf skeleton the
# native code embeds. vmlinux.h is generated from the host's BTF, never edited.
# Usage: scripts/build-bpf.sh [OUTDIR]   (default: gen/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/gen}
mkdir -p "$out"
btf=${WITNESS_BTF:-/sys/kernel/btf/vmlinux}
[ -r "$btf" ] || { echo "build-bpf: no BTF at $btf (kernel built without CONFIG_DEBUG_INFO_BTF?)" >&2; exit 1; }
command -v clang >/dev/null || { echo "build-bpf: clang missing: run scripts/setup-host.sh" >&2; exit 1; }
command -v bpftool >/dev/null || { echo "build-bpf: bpftool missing: run scripts/setup-host.sh" >&2; exit 1; }

if [ ! -s "$out/vmlinux.h" ] || [ "$btf" -nt "$out/vmlinux.h" ]; then
  bpftool btf dump file "$btf" format c > "$out/vmlinux.h.tmp" && mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi
libbpf_inc=${LIBBPF_INCLUDE:-$root/deps/out/include}
[ -d "$libbpf_inc/bpf" ] || libbpf_inc=/usr/include
clang -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Wno-unused-function \
  -I"$out" -I"$root/bpf" -I"$libbpf_inc" \
  -c "$root/bpf/witness.bpf.c" -o "$out/witness.bpf.o.tmp"
# strip DWARF but keep BTF/CO-RE relocations: smaller embedded object
llvm-strip -g "$out/witness.bpf.o.tmp" 2>/dev/null || true
mv "$out/witness.bpf.o.tmp" "$out/witness.bpf.o"
bpftool gen skeleton "$out/witness.bpf.o" name witness_bpf > "$out/witness.skel.h.tmp"
mv "$out/witness.skel.h.tmp" "$out/witness.skel.h"
echo "build-bpf: $out/witness.bpf.o ($(stat -c %s "$out/witness.bpf.o") bytes), $out/witness.skel.h" >&2
