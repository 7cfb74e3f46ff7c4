#!/usr/bin/env bash
# The README's quick start on brand-new Debian hosts: debootstraps a minimal Debian 12 (bookworm)
# and 13 (trixie), copies this checkout into /root/agent-witness of each (root's home is 0700,
# as on a real host), and runs there, as root, exactly the shell blocks the README marks with
# `<!-- fresh-host-test: NAME -->`: start the daemon, the unprivileged agent and the query, stop
# the daemon as Ctrl-C does, verify, the daemon again (the second run must skip every set-up step),
# then the tests. Prints PASS/FAIL per step with timings; exit 0 only when every step passed.
#   bash scripts/fresh-host-test.sh [bookworm|trixie ...]     (default: both; npm run test:fresh)
# Each step runs in a private mount namespace whose root is the new system (pivot_root, the old
# root unmounted), with /proc, /sys, cgroup2, tracefs, bpffs, /dev and a fresh /run mounted as a
# booted Debian has them. The host's network path is reused: its CA bundle (the registry sits
# behind a TLS proxy), resolv.conf, npm config (minus nodedir, which would hide a missing Node)
# and proxy variables are copied in. Nothing else of the host is visible inside.
# Env: FRESH_CACHE (default /var/cache/agent-witness-fresh: debootstrap results, reused),
#      FRESH_SCRATCH (default /var/tmp/agent-witness-fresh: the systems under test, recreated),
#      DEBIAN_MIRROR (default http://deb.debian.org/debian), FRESH_KEEP=1 keeps the scratch trees.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly CACHE=${FRESH_CACHE:-/var/cache/agent-witness-fresh}
readonly SCRATCH=${FRESH_SCRATCH:-/var/tmp/agent-witness-fresh}
readonly MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly PROJECT=/root/agent-witness
readonly STEP_TIMEOUT=${FRESH_STEP_TIMEOUT:-2400}
FAILED=0
RESULTS=()

log() { echo "fresh-host: $*" >&2; }
die() { echo "fresh-host: error: $*" >&2; exit 1; }

record() {  # record SUITE STEP PASS|FAIL SECONDS [detail]
  local line
  line=$(printf '%-4s %-8s %-30s %5ss  %s' "$3" "$1" "$2" "$4" "${5:-}")
  RESULTS+=("$line")
  echo "$line"
  [[ $3 == PASS ]] || FAILED=1
}

# ---- the README's blocks ------------------------------------------------------------------
readme_block() {  # the fenced block right after <!-- fresh-host-test: NAME -->
  awk -v name="$1" '
    $0 == "<!-- fresh-host-test: " name " -->" { armed = 1; next }
    armed && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$ROOT/README.md"
}

# ---- a fresh Debian -----------------------------------------------------------------------
base_system() {  # debootstrap once into the cache; apt sources as an installed Debian has them
  local suite=$1 dir=$CACHE/$1
  BASE_FROM=cache
  [[ -f $dir/.complete ]] && return 0
  BASE_FROM=debootstrap
  command -v debootstrap >/dev/null || {
    log "installing debootstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends debootstrap >/dev/null
  }
  rm -rf "$dir.new"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase "$suite" "$dir.new" "$MIRROR" >"$CACHE/$suite.debootstrap.log" 2>&1 || {
    tail -n 20 "$CACHE/$suite.debootstrap.log" >&2
    return 1
  }
  cat >"$dir.new/etc/apt/sources.list" <<EOF
deb $MIRROR $suite main
deb $MIRROR $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
  rm -rf "$dir.new/var/lib/apt/lists/"*_Packages* "$dir.new/var/cache/apt/archives/"*.deb
  touch "$dir.new/.complete"
  rm -rf "$dir"
  mv "$dir.new" "$dir"
}

# The host's way out: CA bundle and local CAs (kept when ca-certificates regenerates the bundle),
# DNS, npm's network settings, proxy variables. Nothing that would supply a Node or headers.
host_network_into() {
  local r=$1 f
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  mkdir -p "$r/etc/ssl/certs" "$r/usr/local/share/ca-certificates"
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  cp -a /usr/local/share/ca-certificates/. "$r/usr/local/share/ca-certificates/" 2>/dev/null || true
  : >"$r/root/.npmrc"
  for f in /etc/npmrc /usr/etc/npmrc "$HOME/.npmrc"; do
    [[ -f $f ]] && grep -vE '^\s*nodedir\s*=' "$f" >>"$r/root/.npmrc"
  done
  chmod 600 "$r/root/.npmrc"
}

copy_checkout_into() {  # tracked and untracked-but-not-ignored files: never node_modules, deps, build
  local r=$1
  rm -rf "${r:?}$PROJECT"
  mkdir -p "$r$PROJECT"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar --no-recursion -cf - 2>/dev/null) |
    tar -xf - -C "$r$PROJECT"
  chmod 700 "$r/root"
}

# in_root ROOTFS SCRIPT [ENV=VALUE...]: SCRIPT (a file inside ROOTFS) as root of ROOTFS, in /root/agent-witness
in_root() {
  local r=$1 script=$2
  shift 2
  local envs=(HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  local v
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -n ${!v:-} ]] && envs+=("$v=${!v}")
  done
  unshare --mount --propagation private -- bash -euc '
    r=$1 script=$2; shift 2
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount -t sysfs sysfs "$r/sys"
    mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup"
    mount -t tracefs tracefs "$r/sys/kernel/tracing"
    mount -t bpf bpf "$r/sys/fs/bpf"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
    mount -t tmpfs -o mode=755 tmpfs "$r/run"
    cd "$r"
    mkdir -p .old-root
    pivot_root . .old-root
    cd /
    umount -l /.old-root
    rmdir /.old-root
    exec env -i "$@" bash -c "cd '"$PROJECT"' && exec bash -e -o pipefail \"\$0\"" "$script"
  ' fresh "$r" "$script" "${envs[@]}" "$@"
}

write_block() {  # write_block ROOTFS NAME -> path inside ROOTFS of a script holding the README block
  local text
  text=$(readme_block "$2")
  [[ -n $text ]] || die "README.md has no block marked <!-- fresh-host-test: $2 -->"
  printf '%s\n' "$text" >"$1/root/fresh-block-$2.sh"
  echo "/root/fresh-block-$2.sh"
}

# start_daemon SUITE R LOG STEP: the daemon block in the background (its own process group, so a
# Ctrl-C can be sent to it as a terminal would); PASS when the daemon's sensor.start is on stdout.
start_daemon() {
  local suite=$1 r=$2 out=$3 step=$4 start=$SECONDS script
  script=$(write_block "$r" daemon)
  rm -f "$out" "$out.err"  # before the background job opens them: a stale sensor.start must not count
  setsid "$BASH" -c "$(declare -f in_root); PROJECT=$PROJECT; in_root \"\$@\"" fresh "$r" "$script" \
    >"$out" 2>"$out.err" </dev/null &
  DAEMON_PID=$!
  while ! grep -q '"event":"sensor.start"' "$out" 2>/dev/null; do
    if ! kill -0 "$DAEMON_PID" 2>/dev/null || ((SECONDS - start > STEP_TIMEOUT)); then
      record "$suite" "$step" FAIL $((SECONDS - start)) "no sensor.start; stderr: ${out#"$SCRATCH"/}.err"
      tail -n 30 "$out.err" >&2
      stop_daemon || true
      return 1
    fi
    sleep 1
  done
  record "$suite" "$step" PASS $((SECONDS - start)) "$(grep -E '^quickstart: set up in' "$out.err" | tail -1)"
}

stop_daemon() {  # Ctrl-C: SIGINT to the daemon's process group; it must exit 0 within 60 s
  local rc=0 i
  kill -INT -- -"$DAEMON_PID" 2>/dev/null || return 1
  for ((i = 0; i < 60; i++)); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 1; done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then kill -KILL -- -"$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; return 1; fi
  wait "$DAEMON_PID" || rc=$?
  return "$rc"
}

# run_block SUITE R NAME STEP CHECK_REGEX [ENV...]: the README block NAME; PASS when it exits 0
# and its stdout+stderr match CHECK_REGEX. RUN_BLOCK_TRIES (default 1) attempts, 3 s apart: the
# agent block's query can run before a busy daemon has written the event to the store, which
# the README tells the user too ("run it again").
run_block() {
  local suite=$1 r=$2 name=$3 step=$4 check=$5 start=$SECONDS script out rc try=0
  shift 5
  script=$(write_block "$r" "$name")
  out=$SCRATCH/$suite/$step.log
  while :; do
    try=$((try + 1))
    rc=0
    timeout "$STEP_TIMEOUT" bash -c "$(declare -f in_root); PROJECT=$PROJECT; in_root \"\$@\"" fresh "$r" "$script" "$@" \
      >"$out" 2>&1 </dev/null || rc=$?
    ((rc == 0)) && grep -qE "$check" "$out" && break
    ((try < ${RUN_BLOCK_TRIES:-1})) || break
    sleep 3
  done
  if ((rc == 0)) && grep -qE "$check" "$out"; then
    record "$suite" "$step" PASS $((SECONDS - start)) "$( ((try == 1)) || echo "(attempt $try) ")$(grep -E "$check" "$out" | head -1 | cut -c1-100)"
  else
    record "$suite" "$step" FAIL $((SECONDS - start)) "exit $rc; log ${out#"$SCRATCH"/}"
    tail -n 40 "$out" >&2
    return 1
  fi
}

one_suite() {
  local suite=$1 r=$SCRATCH/$1/root start=$SECONDS
  rm -rf "${SCRATCH:?}/$suite"
  mkdir -p "$SCRATCH/$suite"
  if base_system "$suite"; then record "$suite" "base system ($BASE_FROM)" PASS $((SECONDS - start))
  else record "$suite" debootstrap FAIL $((SECONDS - start)); return 1; fi
  start=$SECONDS
  cp -a "$CACHE/$suite" "$r"
  host_network_into "$r"
  copy_checkout_into "$r"
  record "$suite" "copy system + checkout" PASS $((SECONDS - start))

  start_daemon "$suite" "$r" "$SCRATCH/$suite/daemon-1.out" "quickstart 1st run: daemon up" || return 1
  RUN_BLOCK_TRIES=3 run_block "$suite" "$r" agent "unprivileged agent + query" 'agent-note' || { stop_daemon; return 1; }
  start=$SECONDS
  if stop_daemon; then record "$suite" "Ctrl-C: daemon exits 0" PASS $((SECONDS - start))
  else record "$suite" "Ctrl-C: daemon exits 0" FAIL $((SECONDS - start)); return 1; fi
  run_block "$suite" "$r" verify "verify (host key pinned)" '^VERIFIED .*signer pinned' || return 1
  start_daemon "$suite" "$r" "$SCRATCH/$suite/daemon-2.out" "quickstart 2nd run: daemon up" || return 1
  start=$SECONDS
  if stop_daemon; then record "$suite" "Ctrl-C again" PASS $((SECONDS - start))
  else record "$suite" "Ctrl-C again" FAIL $((SECONDS - start)); return 1; fi
  run_block "$suite" "$r" tests "tests (quick start --test)" '^tests: [0-9]+ passed, 0 failed' WITNESS_REQUIRE_KERNEL=1 WITNESS_REQUIRE_SYSTEMD=1 || return 1
}

main() {
  [[ $EUID -eq 0 ]] || die "must run as root (debootstrap, mount namespaces, the sensor)"
  local suites=("$@") suite started=$SECONDS
  ((${#suites[@]})) || suites=(bookworm trixie)
  for suite in "${suites[@]}"; do
    [[ $suite == bookworm || $suite == trixie ]] || die "unknown suite '$suite' (bookworm or trixie)"
  done
  mkdir -p "$SCRATCH"
  for suite in "${suites[@]}"; do
    log "== $suite"
    one_suite "$suite" || true
    [[ ${FRESH_KEEP:-0} == 1 ]] || rm -rf "${SCRATCH:?}/$suite/root"
  done
  echo
  echo "fresh-host summary ($((SECONDS - started))s):"
  printf '%s\n' "${RESULTS[@]}"
  ((FAILED == 0)) && echo "fresh-host: PASS" || echo "fresh-host: FAIL"
  return "$FAILED"
}

main "$@"
