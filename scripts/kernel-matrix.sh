#!/usr/bin/env bash
# Kernel matrix: the same BPF object and loader, proven on every kernel in
# scripts/kernels.list (booted under QEMU/TCG from a busybox initramfs) and on
# the host. Each runs the static witness-tester: capability table + scenarios.
# A kernel passes when every scenario passes and its capability table equals
# test/kernels/expected-capabilities/ID.txt (a regression in gating fails).
#
# Usage: scripts/kernel-matrix.sh [--only ID,ID] [--no-host] [--update-expected]
# Env:   KMX_JOBS (parallel VMs, default 2), KMX_VM_TIMEOUT (seconds, default 600),
#        KMX_TESTER (use this prebuilt static witness-tester instead of building one),
#        KMX_LIST (kernel list, default scripts/kernels.list),
#        KMX_CACHE (kernel cache; default /var/cache/agent-witness-kernels, else .vm-cache/kernels)
# Logs:  .vm-cache/matrix/ (ID.result = tester output, ID.console = guest kernel log)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
list=${KMX_LIST:-$root/scripts/kernels.list}
expected_dir=$root/test/kernels/expected-capabilities
jobs=${KMX_JOBS:-2}
vm_timeout=${KMX_VM_TIMEOUT:-600}
only="" run_host=1 update=0
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=",$2,"; shift 2 ;;
    --no-host) run_host=0; shift ;;
    --update-expected) update=1; shift ;;
    *) echo "kernel-matrix: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

say() { echo "kernel-matrix: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (loading BPF on the host, mknod for the initramfs)"
for c in qemu-system-x86_64 dpkg-deb apt-get timeout clang bpftool; do
  command -v "$c" >/dev/null || die "$c missing: run scripts/setup-host.sh (scripts/apt-packages.txt)"
done
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox missing: install busybox-static (scripts/apt-packages.txt)"
# a dynamic busybox would need its libc inside the initramfs
if ldd "$busybox" >/dev/null 2>&1; then die "$busybox is dynamically linked: install busybox-static"; fi

cache=${KMX_CACHE:-/var/cache/agent-witness-kernels}
mkdir -p "$cache/vmlinuz" "$cache/debs" 2>/dev/null || { cache=$root/.vm-cache/kernels; mkdir -p "$cache/vmlinuz" "$cache/debs"; }
out=$root/.vm-cache/matrix
rm -rf "$out"
mkdir -p "$out"
t_start=$(date +%s)

# --- build once: BPF object (private gen dir, not the shared gen/), static tester ---
if [ -n "${KMX_TESTER:-}" ]; then
  # a prebuilt tester, e.g. one built from a candidate BPF change
  cp "$KMX_TESTER" "$out/witness-tester" || die "KMX_TESTER=$KMX_TESTER not readable"
else
  bash "$root/scripts/build-deps.sh" > "$out/build-deps.log" 2>&1 || die "build-deps failed: $out/build-deps.log"
  bash "$root/scripts/build-bpf.sh" "$out/gen" > "$out/build-bpf.log" 2>&1 || die "build-bpf failed: $out/build-bpf.log"
  make -s -C "$root/native" tester GEN="$out/gen" OUT="$out" > "$out/build-tester.log" 2>&1 ||
    die "static tester build failed: $out/build-tester.log"
fi
tester=$out/witness-tester
ldd "$tester" >/dev/null 2>&1 && die "$tester is not static"

# --- kernels: pinned package, else today's package of the meta name ---
declare -a ids=() kernels=() notes=()
fetch_deb() { # PACKAGE VERSION -> downloads into $cache/debs, prints the file
  local pkg=$1 ver=$2 f
  f=$(ls "$cache/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$f" ]; then
    (cd "$cache/debs" && apt-get download "$pkg=$ver") >> "$out/apt.log" 2>&1 || return 1
    f=$(ls "$cache/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
  fi
  [ -n "$f" ] && echo "$f"
}
resolve_kernel() { # ID PACKAGE VERSION META -> prints the cached vmlinuz path; drift goes to $out/notes
  local id=$1 pkg=$2 ver=$3 meta=$4 deb img note
  img=$cache/vmlinuz/${pkg}_${ver}
  [ -s "$img" ] && { echo "$img"; return 0; }
  deb=$(fetch_deb "$pkg" "$ver" || true)
  if [ -z "$deb" ] && [ ! -e "$out/apt-updated" ]; then
    # once per run (this runs in a subshell: a file, not a variable, remembers)
    touch "$out/apt-updated"
    apt-get update -qq >> "$out/apt.log" 2>&1 || true
    deb=$(fetch_deb "$pkg" "$ver" || true)
  fi
  if [ -z "$deb" ]; then
    # the pin left the archive: take what the meta package depends on today
    pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/{print $2}')
    [ -n "$pkg" ] && [ -n "$ver" ] && [ "$ver" != "(none)" ] || return 1
    note="pin gone, used $pkg=$ver from $meta: update scripts/kernels.list"
    say "$id: $note"
    echo "$id $note" >> "$out/notes"
    img=$cache/vmlinuz/${pkg}_${ver}
    [ -s "$img" ] && { echo "$img"; return 0; }
    deb=$(fetch_deb "$pkg" "$ver") || return 1
  fi
  # only the kernel image is needed (no modules: the guest uses built-ins only)
  dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './boot/vmlinuz-*' > "$img.tmp" && [ -s "$img.tmp" ] || return 1
  mv "$img.tmp" "$img"
  rm -f "$deb"
  echo "$img"
}
while read -r id pkg ver meta; do
  case $id in ''|\#*) continue ;; esac
  [ -z "$only" ] || [[ $only == *",$id,"* ]] || continue
  img=$(resolve_kernel "$id" "$pkg" "$ver" "$meta") || die "$id: cannot fetch $pkg=$ver nor a kernel of $meta (see $out/apt.log)"
  note=$(grep -s "^$id " "$out/notes" | cut -d' ' -f2- || true)
  ids+=("$id") kernels+=("$img") notes+=("$note")
done < "$list"
[ -z "$only" ] || [ ${#ids[@]} -gt 0 ] || die "--only ${only:1:${#only}-2} matches no ID in $list"

# --- initramfs: busybox + tester + /init; results on the second serial port ---
stage=$out/initramfs
mkdir -p "$stage"/{bin,dev,etc,proc,sys,tmp}
cp "$busybox" "$stage/bin/busybox"
cp "$tester" "$stage/witness-tester"
mknod -m 600 "$stage/dev/console" c 5 1
echo 'root:x:0:0:root:/:/bin/sh' > "$stage/etc/passwd"
echo 'root:*:19000:0:99999:7:::' > "$stage/etc/shadow"
chmod 640 "$stage/etc/shadow"
echo 'witness-guest' > "$stage/etc/hostname"
cat > "$stage/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev
mount -t sysfs sysfs /sys
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t tmpfs tmpfs /tmp
ip link set lo up
hostname witness-guest
cd /tmp
{
  echo "GUEST-BEGIN"
  /witness-tester run 2>&1
  echo "GUEST-END rc=$?"
} > /dev/ttyS1
sync
poweroff -f
EOF
chmod 755 "$stage/init"
(cd "$stage" && find . -mindepth 1 -printf '%P\n' | "$busybox" cpio -o -H newc 2>/dev/null) > "$out/initramfs.cpio"

boot() { # ID VMLINUZ: one guest, wall time into ID.time
  local id=$1 img=$2 t0 rc=0
  t0=$(date +%s%N)
  # QEMU pauses rather than exits when a guest wedges: timeout is the backstop
  timeout "$vm_timeout" qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 1024 -no-reboot \
    -display none -monitor none -nic none \
    -kernel "$img" -initrd "$out/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 loglevel=4" \
    -serial "file:$out/$id.console" -serial "file:$out/$id.result" > "$out/$id.qemu" 2>&1 || rc=$?
  echo "$rc $(( ($(date +%s%N) - t0) / 1000000 ))" > "$out/$id.time"
  # the guest's tty turns \n into \r\n
  [ ! -f "$out/$id.result" ] || sed -i 's/\r$//' "$out/$id.result"
}

# --- host first (it would compete with the guests for the CPUs) ---
if [ $run_host = 1 ]; then
  say "running on the host ($(uname -r))"
  t0=$(date +%s%N)
  (cd /tmp && echo GUEST-BEGIN && "$tester" run 2>&1; echo "GUEST-END rc=$?") > "$out/host.result" || true
  echo "0 $(( ($(date +%s%N) - t0) / 1000000 ))" > "$out/host.time"
fi

running=0
for i in "${!ids[@]}"; do
  if [ $running -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
  say "booting ${ids[$i]} ($(basename "${kernels[$i]}"))"
  boot "${ids[$i]}" "${kernels[$i]}" &
  running=$((running + 1))
done
wait || true

# --- verdicts ---
all=("${ids[@]}")
[ $run_host = 1 ] && all=(host "${ids[@]}")
passed=0 failed=0
table=$(printf '%-18s %-6s %-34s %-9s %-9s %s\n' KERNEL RESULT RELEASE PROGRAMS SCENARIOS WALL)
for id in "${all[@]}"; do
  res=$out/$id.result
  exp=$expected_dir/$id.txt
  read -r vmrc wall_ms < "$out/$id.time" || { vmrc=?; wall_ms=0; }
  release=$(sed -n 's/^KERNEL //p' "$res" 2>/dev/null | head -1)
  grep '^CAP ' "$res" 2>/dev/null | awk '{print $2, $3}' > "$out/$id.caps" || true
  progs="$(grep -c ' attached$' "$out/$id.caps" || true)/$(wc -l < "$out/$id.caps")"
  sp=$(sed -n 's/^DONE pass=\([0-9]*\) fail=\([0-9]*\)$/\1 \2/p' "$res" 2>/dev/null | tail -1)
  why=()
  if [ -z "$sp" ]; then
    # qemu rc 124 = the timeout fired; the console log shows how far the guest got
    why+=("no DONE line: tester crashed or the guest was cut off (qemu rc $vmrc; see $out/$id.console)"
          "$(grep -s '^SCENARIO .* FAIL\|^SCENARIO load' "$res" | sed 's/^/  /' || true)")
    sp="0 0"
  elif ! grep -q '^GUEST-END rc=0$' "$res"; then
    why+=("tester exit status not 0: $(grep -s '^GUEST-END' "$res" || echo 'no GUEST-END line')")
  fi
  read -r sok sfail <<< "$sp"
  [ "$sfail" = 0 ] || why+=("$(grep '^SCENARIO .* FAIL' "$res" | sed 's/^SCENARIO /  /' || true)")
  if [ $update = 1 ] && [ -s "$out/$id.caps" ]; then
    { echo "# Capability table witness-tester must print on $id ($release)."
      echo "# NAME attached|loaded|failed; regenerate: scripts/kernel-matrix.sh --update-expected"
      cat "$out/$id.caps"; } > "$exp"
  fi
  if [ ! -f "$exp" ]; then
    why+=("no expected capabilities $exp (run with --update-expected after checking the table)")
  elif ! diff <(grep -v '^#' "$exp") "$out/$id.caps" > "$out/$id.capdiff"; then
    why+=("capability table differs from $exp (< expected, > seen):" "$(sed 's/^/  /' "$out/$id.capdiff")"
          "$(grep '^CAP .* \(failed\|loaded\) ' "$res" | sed 's/^/  /' || true)")
  fi
  verdict=PASS
  [ ${#why[@]} = 0 ] || verdict=FAIL
  [ $verdict = PASS ] && passed=$((passed + 1)) || failed=$((failed + 1))
  line=$(printf '%-18s %-6s %-34s %-9s %-9s %ss' "$id" "$verdict" "${release:-?}" "$progs" "$sok/$((sok + sfail))" "$((wall_ms / 1000)).$(( (wall_ms % 1000) / 100 ))")
  table+=$'\n'"$line"
  if [ $verdict = FAIL ]; then
    say "$id FAILED:"
    printf '%s\n' "${why[@]}" >&2
  fi
done
for i in "${!ids[@]}"; do [ -z "${notes[$i]}" ] || say "${ids[$i]}: ${notes[$i]}"; done
echo "$table"
echo "matrix wall time: $(( $(date +%s) - t_start ))s (logs: $out)"
echo "kernels: $passed passed, $failed failed"
[ $failed = 0 ]
