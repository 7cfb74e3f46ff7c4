#!/usr/bin/env bash
# Builds position-independent static zlib, libelf and libbpf from the Debian 12 source packages
# pinned in scripts/deps.lock, into deps/out/{lib,include}.
#
# Why: Debian ships libbpf.a/libelf.a/libz.a compiled as PIE, not PIC (TLS and PC32 relocations),
# so they cannot go into the Node addon (.node is a shared object). Building from Debian's *source*
# keeps Debian's patches and its signed provenance while adding -fPIC.
#
# Usage: scripts/build-deps.sh [--force | --print-include | --print-libs | --help]
#   (no flag)        build unless deps/out/.stamp already matches scripts/deps.lock
#   --force          rebuild even if the stamp matches
#   --print-include  print the include dir (for binding.gyp); fails if deps are not built
#   --print-libs     print the static libs in link order (for binding.gyp); fails if not built
# Env: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (default deb.debian.org), DEPS_JOBS (default 2).
set -euo pipefail

# Bump when the recipe below changes in a way that alters the outputs, so caches rebuild.
readonly RECIPE_REVISION=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly LOCK_FILE=$ROOT/scripts/deps.lock
readonly DEPS=$ROOT/deps
readonly APT_DIR=$DEPS/apt        # private apt config + lists: the host's apt setup stays untouched
readonly SRC_DIR=$DEPS/src        # verified source downloads, kept as a cache
readonly BUILD_DIR=$DEPS/build    # scratch trees, recreated on every build
readonly OUT=$DEPS/out
readonly STAGE=$DEPS/out.new      # built here, then renamed to $OUT so $OUT is never half-written
readonly JOBS=${DEPS_JOBS:-2}
readonly MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
readonly ARCHIVE_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
readonly LIBS_IN_LINK_ORDER=(libbpf.a libelf.a libz.a)  # a library comes before the ones it uses

# No -g: nothing here is debugged in place and it keeps the addon small. The prefix map keeps
# build paths out of the objects (assert() strings), so the output does not depend on the checkout.
readonly COMMON_CFLAGS="-O2 -fPIC -fstack-protector-strong -ffile-prefix-map=$BUILD_DIR=deps-build"

log() { echo "build-deps: $*" >&2; }
die() { echo "build-deps: error: $*" >&2; exit 1; }

usage() { sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

# ---- pinned versions ------------------------------------------------------------------------
declare -A PIN_VERSION=() PIN_DSC_SHA256=()
PIN_ORDER=()

read_lock() {
  [[ -r $LOCK_FILE ]] || die "$LOCK_FILE: not readable"
  local name version sha extra line_no=0
  while read -r name version sha extra; do
    line_no=$((line_no + 1))
    [[ -z $name || $name == \#* ]] && continue
    if [[ -z $version || ! $sha =~ ^[0-9a-f]{64}$ || -n ${extra:-} ]]; then
      die "$LOCK_FILE:$line_no: malformed entry for '$name' (want: <source-package> <version> <dsc-sha256>)"
    fi
    PIN_VERSION[$name]=$version
    PIN_DSC_SHA256[$name]=$sha
    PIN_ORDER+=("$name")
  done <"$LOCK_FILE"
  local required
  for required in zlib elfutils libbpf; do
    [[ -n ${PIN_VERSION[$required]:-} ]] || die "$LOCK_FILE: no entry for source package '$required'"
  done
}

expected_stamp() {
  echo "recipe=$RECIPE_REVISION lock-sha256=$(sha256sum <"$LOCK_FILE" | cut -d' ' -f1)"
}

outputs_current() {
  [[ -f $OUT/.stamp && "$(cat "$OUT/.stamp")" == "$(expected_stamp)" ]] || return 1
  local lib
  for lib in "${LIBS_IN_LINK_ORDER[@]}"; do [[ -f $OUT/lib/$lib ]] || return 1; done
  [[ -f $OUT/include/bpf/libbpf.h && -f $OUT/include/libelf.h && -f $OUT/include/zlib.h ]]
}

link_libs() {
  local lib paths=()
  for lib in "${LIBS_IN_LINK_ORDER[@]}"; do paths+=("$OUT/lib/$lib"); done
  echo "${paths[*]}"
}

print_summary() {
  echo "deps: $(cat "$OUT/.stamp")"
  sed 's/^/  /' "$OUT/VERSIONS"
  echo "include dir: $OUT/include"
  echo "static libs (link order): $(link_libs)"
  echo "link line: -Wl,--exclude-libs,ALL $(link_libs)"
}

# ---- sources --------------------------------------------------------------------------------
APT_OPTS=(
  -q
  -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::Cache=$APT_DIR/cache"
  # Spelled out so no host or CI apt.conf snippet can weaken signature checks for these downloads.
  -o APT::Get::AllowUnauthenticated=false
  -o Acquire::AllowInsecureRepositories=false
  -o Acquire::AllowDowngradeToInsecureRepositories=false
  # deps/ is owned by the invoking user, which apt's _apt sandbox user cannot write to.
  -o APT::Sandbox::User=root
)
INDEX_REFRESHED=0

refresh_source_index() {
  ((INDEX_REFRESHED)) && return 0
  [[ -r $ARCHIVE_KEYRING ]] || die "$ARCHIVE_KEYRING missing: install debian-archive-keyring"
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  local suite_line="[signed-by=$ARCHIVE_KEYRING]"
  cat >"$APT_DIR/sources.list" <<EOF
# Written by scripts/build-deps.sh: source-only index used just for the pinned packages.
deb-src $suite_line $MIRROR bookworm main
deb-src $suite_line $MIRROR bookworm-updates main
deb-src $suite_line $SECURITY_MIRROR bookworm-security main
EOF
  log "refreshing private Debian source index ($MIRROR)"
  apt-get "${APT_OPTS[@]}" update >"$APT_DIR/update.log" 2>&1 || {
    tail -n 20 "$APT_DIR/update.log" >&2
    die "apt-get update of the private source index failed (log: $APT_DIR/update.log)"
  }
  INDEX_REFRESHED=1
}

dsc_path() {  # the .dsc file name drops the epoch: 1:1.2.13.dfsg-1 -> zlib_1.2.13.dfsg-1.dsc
  local name=$1 version=${PIN_VERSION[$1]}
  echo "$SRC_DIR/$name/${name}_${version#*:}.dsc"
}

dsc_matches_pin() {
  local name=$1 dsc
  dsc=$(dsc_path "$name")
  [[ -f $dsc ]] && [[ "$(sha256sum <"$dsc" | cut -d' ' -f1)" == "${PIN_DSC_SHA256[$name]}" ]]
}

# apt verifies the download against the Sources index, which is signed by the Debian archive key;
# we then also require the .dsc to match the hash pinned in deps.lock, and dpkg-source -x checks
# every tarball against the checksums in that .dsc.
fetch_source() {
  local name=$1 version=${PIN_VERSION[$1]}
  if dsc_matches_pin "$name"; then
    log "$name $version: using cached download in ${SRC_DIR#"$ROOT"/}/$name"
    return 0
  fi
  refresh_source_index
  log "$name $version: downloading source package"
  rm -rf "$SRC_DIR/$name"
  mkdir -p "$SRC_DIR/$name"
  (cd "$SRC_DIR/$name" && apt-get "${APT_OPTS[@]}" -o APT::Get::Only-Source=true \
    source --download-only "$name=$version") >"$SRC_DIR/$name.download.log" 2>&1 || {
    tail -n 20 "$SRC_DIR/$name.download.log" >&2
    die "could not download source package $name=$version from bookworm; if Debian superseded" \
      "it, pick the new version with 'apt-cache showsrc $name' and update $LOCK_FILE"
  }
  dsc_matches_pin "$name" ||
    die "$(dsc_path "$name"): sha256 differs from the pin in $LOCK_FILE for $name (refusing to build)"
}

extract_source() {
  local name=$1
  rm -rf "${BUILD_DIR:?}/$name"
  dpkg-source -x "$(dsc_path "$name")" "$BUILD_DIR/$name" >"$BUILD_DIR/$name.extract.log" 2>&1 || {
    tail -n 20 "$BUILD_DIR/$name.extract.log" >&2
    die "dpkg-source could not unpack $name (corrupt cache? remove ${SRC_DIR#"$ROOT"/}/$name and retry)"
  }
}

# Runs a build step with its noise in a log file; on failure shows the tail and names the log.
run_logged() {
  local name=$1 log_file=$BUILD_DIR/$1.build.log
  shift
  "$@" >>"$log_file" 2>&1 || {
    tail -n 40 "$log_file" >&2
    die "$name build step failed: $* (full log: $log_file)"
  }
}

# ---- builds ---------------------------------------------------------------------------------
# ARFLAGS with D: deterministic archives (zero timestamps/uids), so rebuilds are bit-identical.

build_zlib() {
  local src=$BUILD_DIR/zlib
  log "zlib: building libz.a"
  (cd "$src" && run_logged zlib env CFLAGS="$COMMON_CFLAGS -D_FORTIFY_SOURCE=2" \
    ./configure --static --prefix=/unused)
  run_logged zlib make -C "$src" -j"$JOBS" ARFLAGS=rcD libz.a
  install -m644 "$src/libz.a" "$STAGE/lib/"
  install -m644 "$src/zlib.h" "$src/zconf.h" "$STAGE/include/"
}

# elfutils: configure the whole tree (its headers come from configure), build only lib/ + libelf/.
# Maintainer mode stays off so the tarball's generated Makefiles are used as-is (no autotools
# needed); -Wno-error then stands in for debian/patches/disable_werror.patch, which only edits
# config/eu.am and so would otherwise need automake to take effect.
build_elfutils() {
  local src=$BUILD_DIR/elfutils
  log "elfutils: configuring, then building lib/ and libelf/libelf.a only"
  (cd "$src" && run_logged elfutils ./configure --prefix=/unused \
    --disable-debuginfod --disable-libdebuginfod --disable-nls \
    --without-bzlib --without-lzma --without-zstd \
    CFLAGS="$COMMON_CFLAGS -Wno-error" CPPFLAGS="-I$STAGE/include" LDFLAGS="-L$STAGE/lib")
  run_logged elfutils make -C "$src/lib" -j"$JOBS" ARFLAGS=crD
  run_logged elfutils make -C "$src/libelf" -j"$JOBS" ARFLAGS=crD libelf.a
  install -m644 "$src/libelf/libelf.a" "$STAGE/lib/"
  install -m644 "$src/libelf/libelf.h" "$src/libelf/gelf.h" "$src/libelf/nlist.h" "$STAGE/include/"
  install -d "$STAGE/include/elfutils"
  install -m644 "$src/libelf/elf-knowledge.h" "$src/version.h" "$STAGE/include/elfutils/"
}

# libbpf: static objects only, compiled against the libelf/zlib headers just staged. Our CFLAGS
# replace upstream's default (-g -O2 -Werror -Wall -std=gnu89) minus -g/-Werror, plus Debian's
# -Werror=implicit-function-declaration and -fPIC (upstream only adds -fPIC to shared objects).
build_libbpf() {
  local src=$BUILD_DIR/libbpf obj=$BUILD_DIR/libbpf-obj
  log "libbpf: building libbpf.a (BUILD_STATIC_ONLY=1)"
  rm -rf "$obj"
  mkdir -p "$obj"  # upstream's Makefile races writing libbpf.pc into a missing OBJDIR under -j
  run_logged libbpf make -C "$src/src" -j"$JOBS" V=1 BUILD_STATIC_ONLY=1 OBJDIR="$obj" \
    CFLAGS="$COMMON_CFLAGS -D_FORTIFY_SOURCE=2 -std=gnu89 -Wall -Werror=implicit-function-declaration -I$STAGE/include" \
    ARFLAGS=rcsD
  install -m644 "$obj/libbpf.a" "$STAGE/lib/"
  run_logged libbpf make -C "$src/src" BUILD_STATIC_ONLY=1 OBJDIR="$obj" \
    DESTDIR="$STAGE" INCLUDEDIR=/include install_headers
}

# ---- checks on the result -------------------------------------------------------------------
# Absolute (non-PIC) relocations are what made Debian's archives unusable; refuse to ship any.
check_no_absolute_relocations() {
  [[ $(uname -m) == x86_64 ]] || return 0
  local lib bad
  for lib in "${LIBS_IN_LINK_ORDER[@]}"; do
    bad=$(readelf -rW "$STAGE/lib/$lib" | grep -cE 'R_X86_64_(32|32S|TPOFF32) ' || true)
    [[ $bad == 0 ]] || die "$lib has $bad non-PIC relocations (R_X86_64_32/32S/TPOFF32); -fPIC was lost"
  done
}

# Links the libs into a throwaway shared object exactly as the addon will, and requires that it
# needs none of them at run time.
check_links_into_shared_object() {
  local dir=$BUILD_DIR/link-check libs=()
  local lib
  for lib in "${LIBS_IN_LINK_ORDER[@]}"; do libs+=("$STAGE/lib/$lib"); done
  mkdir -p "$dir"
  cat >"$dir/probe.c" <<'EOF'
#include <bpf/libbpf.h>
#include <libelf.h>
#include <zlib.h>
int deps_probe(void) {
  return (int)libbpf_major_version() + (int)elf_version(EV_CURRENT) + (zlibVersion()[0] == '1');
}
EOF
  run_logged link-check gcc -fPIC -O2 -I"$STAGE/include" -c "$dir/probe.c" -o "$dir/probe.o"
  run_logged link-check gcc -shared -o "$dir/probe.so" "$dir/probe.o" -Wl,--exclude-libs,ALL \
    "${libs[@]}" -Wl,--no-undefined
  if readelf -dW "$dir/probe.so" | grep -E 'NEEDED.*(libbpf|libelf|libz)'; then
    die "link check: $dir/probe.so still needs a shared libbpf/libelf/libz"
  fi
}

# ---- main -----------------------------------------------------------------------------------
require_tools() {
  local tool missing=()
  for tool in apt-get dpkg-source gcc make ar readelf flock sha256sum install; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (run scripts/setup-host.sh)"
}

build_all() {
  require_tools
  mkdir -p "$SRC_DIR" "$BUILD_DIR"
  local name
  for name in "${PIN_ORDER[@]}"; do fetch_source "$name"; done
  rm -rf "$STAGE" "$BUILD_DIR"/*.log
  mkdir -p "$STAGE/lib" "$STAGE/include"
  for name in zlib elfutils libbpf; do
    extract_source "$name"
    "build_$name"
  done
  check_no_absolute_relocations
  check_links_into_shared_object
  for name in zlib elfutils libbpf; do
    printf '%-9s %s\n' "$name" "${PIN_VERSION[$name]}"
  done >"$STAGE/VERSIONS"
  (cd "$STAGE/lib" && sha256sum "${LIBS_IN_LINK_ORDER[@]}") >"$STAGE/SHA256SUMS"
  expected_stamp >"$STAGE/.stamp"  # written last: its presence means the rest is complete
  rm -rf "$OUT"
  mv "$STAGE" "$OUT"
}

main() {
  local mode=${1:-build}
  case $mode in
    build | --force) ;;
    --print-include | --print-libs) ;;
    -h | --help) usage; return 0 ;;
    *) usage >&2; die "unknown argument: $mode" ;;
  esac
  (($# <= 1)) || die "expected at most one argument, got: $*"
  read_lock

  if [[ $mode == --print-* ]]; then
    outputs_current || die "deps/out is missing or stale; run scripts/build-deps.sh first"
    [[ $mode == --print-include ]] && echo "$OUT/include" || link_libs
    return 0
  fi

  mkdir -p "$DEPS"
  exec 9>"$DEPS/.build.lock"  # one build at a time per checkout (parallel CI steps, helpers)
  if ! flock -n 9; then
    log "another build-deps run holds $DEPS/.build.lock; waiting"
    flock 9
  fi

  if [[ $mode == build ]] && outputs_current; then
    log "deps/out matches scripts/deps.lock; nothing to do (use --force to rebuild)"
  else
    local started=$SECONDS
    build_all
    log "built in $((SECONDS - started))s"
  fi
  print_summary
}

main "$@"
