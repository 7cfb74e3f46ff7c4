#!/usr/bin/env node
'use strict';
// Which Node runs, and whether it can run and build this project. Plain CommonJS with no
// syntax newer than Node 10, so an old Node (Debian 12's 18, or older) gets one clear line
// instead of a stack trace from a dependency.
//   node scripts/node-info.cjs check     exit 0 when this Node satisfies package.json engines;
//                                        otherwise one line on stderr and exit 1
//   node scripts/node-info.cjs nodedir   print the prefix whose include/node/ holds the headers
//                                        of exactly this Node (for node-gyp --nodedir); exit 1
//                                        with one line when there are none
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const engines = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).engines.node;

function parse(v) { return v.replace(/^v/, '').split('.').map(Number); }
function cmp(a, b) { for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; }

// The range forms package.json uses: "^X.Y.Z" and ">=X.Y.Z", joined by "||".
function satisfies(version, range) {
  const v = parse(version);
  return range.split('||').some((part) => {
    const m = /^\s*(\^|>=)\s*(\d+\.\d+\.\d+)\s*$/.exec(part);
    if (!m) throw new Error(`package.json engines.node: unsupported range '${part.trim()}'`);
    const base = parse(m[2]);
    return cmp(v, base) >= 0 && (m[1] === '>=' || v[0] === base[0]);
  });
}

function headerVersion(prefix) {
  const file = path.join(prefix, 'include', 'node', 'node_version.h');
  let text;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { return null; }
  const get = (k) => (new RegExp(`#define ${k} (\\d+)`).exec(text) || [])[1];
  return [get('NODE_MAJOR_VERSION'), get('NODE_MINOR_VERSION'), get('NODE_PATCH_VERSION')].join('.');
}

// The prefix of the binary that runs (…/bin/node -> …), then the prefix it was configured with.
function nodedir() {
  const candidates = [];
  try { candidates.push(path.dirname(path.dirname(fs.realpathSync(process.execPath)))); } catch (e) { /* no /proc */ }
  const configured = process.config && process.config.variables && process.config.variables.node_prefix;
  if (configured) candidates.push(configured);
  const want = process.versions.node;
  const seen = [];
  for (const prefix of candidates) {
    const have = headerVersion(prefix);
    if (have === want && fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) return { prefix };
    seen.push(`${prefix}/include/node: ${have ? `headers of ${have}` : 'none'}`);
  }
  return { error: `no headers for Node ${want} (${seen.join('; ')}); on Debian install libnode-dev, or run bash scripts/setup-node.sh` };
}

// Node refuses process.setuid/setgroups (CVE-2024-22017 mitigation) when its libuv may use
// io_uring: always with a shared libuv, as Debian 13's nodejs has, whatever UV_USE_IO_URING says.
// witness drops privileges with them (cosigner --user, the unprivileged children of tests).
function privilegeDropDisabled() {
  if (typeof process.setgroups !== 'function' || typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  try { process.setgroups(process.getgroups()); } catch (e) { return /io_uring/.test(String(e && e.message)); }
  return false;
}

const mode = process.argv[2];
if (mode === 'check') {
  if (satisfies(process.versions.node, engines) && privilegeDropDisabled()) {
    process.stderr.write(`agent-witness needs a Node whose process.setuid/setgroups work; ${process.execPath} ${process.version} disables them (libuv with io_uring, CVE-2024-22017; Debian's nodejs): run bash scripts/setup-node.sh (or the quick start), which installs a supported Node into .node/\n`);
    process.exit(1);
  }
  if (satisfies(process.versions.node, engines)) process.exit(0);
  process.stderr.write(`agent-witness needs Node ${engines} (package.json engines); ${process.execPath} is ${process.version}: run bash scripts/setup-node.sh (or the quick start), which installs a supported Node into .node/\n`);
  process.exit(1);
} else if (mode === 'nodedir') {
  const r = nodedir();
  if (r.error) { process.stderr.write(`${r.error}\n`); process.exit(1); }
  process.stdout.write(`${r.prefix}\n`);
} else {
  process.stderr.write('usage: node scripts/node-info.cjs check|nodedir\n');
  process.exit(2);
}
