# Sourced (not run) by the build and test scripts: puts the project-local Node of
# scripts/setup-node.sh (.node/bin) first on PATH when there is one, and exports
# npm_config_nodedir = the headers of the Node that runs, so node-gyp (the addon,
# better-sqlite3) never builds against another Node's headers and never downloads them.
# `source scripts/node-env.sh` also refuses, in one line, a Node that package.json's
# engines do not allow; `--no-check` skips both checks (setup-node.sh, before a Node exists).
_wa_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -d $_wa_root/.node/bin ]]; then
  case ":$PATH:" in *":$_wa_root/.node/bin:"*) ;; *) export PATH="$_wa_root/.node/bin:$PATH" ;; esac
fi
hash -r
if [[ ${1:-} != --no-check ]]; then
  command -v node >/dev/null || { echo "agent-witness: no node on PATH: run bash scripts/setup-node.sh (or the quick start)" >&2; exit 1; }
  node "$_wa_root/scripts/node-info.cjs" check || exit 1
  npm_config_nodedir=$(node "$_wa_root/scripts/node-info.cjs" nodedir) || exit 1
  export npm_config_nodedir
fi
unset _wa_root
