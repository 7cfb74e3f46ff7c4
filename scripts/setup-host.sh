#!/usr/bin/env bash
# Prepares a Debian 12 or 13 host (or CI runner) for building and running agent-witness:
#   1. installs every package listed in scripts/apt-packages.txt (what the quick start needs to
#      build and run the sensor) that is not installed yet, and with --test also those in
#      scripts/apt-packages-test.txt (only the tests and the kernel matrix need them), running
#      `apt-get update` first only when the package lists are missing or stale;
#   2. mounts tracefs at /sys/kernel/tracing (tracepoint ids live there) and debugfs at
#      /sys/kernel/debug (older tools still look for tracing under it) when not mounted.
# Idempotent: a second run changes nothing and says so. Must run as root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly APT_LISTS=/var/lib/apt/lists
readonly LISTS_MAX_AGE_MINUTES=$((24 * 60))
# Wait for another apt/dpkg run (other jobs on the host) instead of failing on its lock.
readonly APT_OPTS=(-q -o DPkg::Lock::Timeout=600)

log() { echo "setup-host: $*"; }
die() { echo "setup-host: error: $*" >&2; exit 1; }

read_package_list() {
  local PACKAGE_FILE=$1
  [[ -r $PACKAGE_FILE ]] || die "$PACKAGE_FILE: not readable"
  local line name extra line_no=0
  while IFS= read -r line || [[ -n $line ]]; do
    line_no=$((line_no + 1))
    read -r name extra <<<"${line%%#*}"    # drop comments and surrounding blanks
    [[ -z $name ]] && continue
    [[ -z $extra ]] || die "$PACKAGE_FILE:$line_no: '$line' has more than one package (one per line)"
    # Debian package name, optionally :arch and/or =version; anything else is a typo.
    [[ $name =~ ^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?(=[A-Za-z0-9.+~:-]+)?$ ]] ||
      die "$PACKAGE_FILE:$line_no: '$line' is not a Debian package name"
    PACKAGES+=("$name")
  done <"$PACKAGE_FILE"
  ((${#PACKAGES[@]} > 0)) || die "$PACKAGE_FILE: lists no packages"
}

is_installed() {
  local name=${1%%=*}
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null || true)" == installed ]]
}

lists_need_update() {
  compgen -G "$APT_LISTS/*_Packages*" >/dev/null || return 0
  # Stale when no index has been refreshed within the allowed age.
  [[ -z $(find "$APT_LISTS" -maxdepth 1 -name '*_Packages*' -mmin -"$LISTS_MAX_AGE_MINUTES" -print -quit) ]]
}

apt_update() {
  log "running apt-get update"
  apt-get "${APT_OPTS[@]}" update || die "apt-get update failed (network or apt sources?)"
  LISTS_UPDATED=1
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "$@"
}

install_packages() {
  local name missing=()
  for name in "${PACKAGES[@]}"; do is_installed "$name" || missing+=("$name"); done
  if ((${#missing[@]} == 0)); then
    log "packages: all ${#PACKAGES[@]} from ${LISTS[*]} already installed"
    return 0
  fi
  log "packages to install: ${missing[*]}"
  if lists_need_update; then apt_update; fi
  if ! apt_install "${missing[@]}"; then
    # Lists that are fresh by age can still point at superseded .debs; refresh once and retry.
    ((LISTS_UPDATED)) && die "apt-get install failed for: ${missing[*]}"
    apt_update
    apt_install "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
  fi
  log "installed: ${missing[*]}"
}

# mount_filesystem <fstype> <mountpoint> <required: yes|no>
mount_filesystem() {
  local fstype=$1 target=$2 required=$3
  if findmnt -rn -t "$fstype" -M "$target" >/dev/null 2>&1; then
    log "$fstype: already mounted at $target"
  elif [[ -d $target ]] && mount -t "$fstype" "$fstype" "$target"; then
    log "$fstype: mounted at $target"
  elif [[ $required == yes ]]; then
    die "could not mount $fstype at $target (kernel without $fstype, or no CAP_SYS_ADMIN?)"
  else
    log "$fstype: could not mount at $target; continuing (optional)"
  fi
}

main() {
  LISTS=(scripts/apt-packages.txt)
  if [[ ${1:-} == --test ]]; then LISTS+=(scripts/apt-packages-test.txt); shift; fi
  (($# == 0)) || die "usage: setup-host.sh [--test] (edit scripts/apt-packages*.txt to change packages)"
  [[ $EUID -eq 0 ]] || die "must run as root (installs packages, mounts tracefs)"
  PACKAGES=()
  LISTS_UPDATED=0
  local list
  for list in "${LISTS[@]}"; do read_package_list "$ROOT/$list"; done
  install_packages
  mount_filesystem tracefs /sys/kernel/tracing yes
  mount_filesystem debugfs /sys/kernel/debug no
  log "done"
}

main "$@"
