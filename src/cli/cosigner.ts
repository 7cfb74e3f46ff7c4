import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { WitnessError } from '../errors.js';
import { preloadFlock } from '../ledger/flock.js';
import { CosignerServer } from '../cosigner/server.js';
import { ALG_COSIGNATURE_V1, ALG_ED25519 } from '../ledger/note-keys.js';
import { loadNoteSigner, loadVerifierKey, vkeyPathOf } from '../ledger/note-key-files.js';
import { log } from '../log.js';

const USAGE = 'usage: witness cosigner serve --listen HOST:PORT --key P.key --log LOG.vkey [--log ...] --state DIR [--user USER]\n' +
  '  A C2SP tlog-witness: POST /add-checkpoint cosigns consistent growth of the logs named by --log;\n' +
  '  GET /checkpoint/<origin> returns the latest cosigned checkpoint. Run it on another machine, or as\n' +
  '  its own unprivileged user (--user drops root after reading the key), or in its own network namespace.\n';

function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new WitnessError('E_CONFIG', `expected HOST:PORT, got '${s}'`, { file: 'witness cosigner', field: '--listen' });
  return { host: m[1] ?? m[2]!, port };
}

/** Drops root for USER: the state dir becomes theirs, then gid and uid are switched (the key was read before). */
function dropTo(user: string, stateDir: string): void {
  let uid: number; let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  } catch (cause) {
    throw new WitnessError('E_CONFIG', `no such user '${user}'`, { file: 'witness cosigner', field: '--user', cause });
  }
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const chownTree = (p: string): void => {
    fs.chownSync(p, uid, gid);
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e));
  };
  chownTree(stateDir);
  process.setgroups?.([]);
  process.setgid?.(gid);
  process.setuid?.(uid);
}

async function serve(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, options: {
      listen: { type: 'string' }, key: { type: 'string' }, log: { type: 'string', multiple: true }, state: { type: 'string' },
      user: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) {
    throw new WitnessError('E_CONFIG', (e as Error).message, { file: 'witness cosigner serve', field: 'argv' });
  }
  if (values.help) { process.stderr.write(USAGE); return 0; }
  for (const f of ['listen', 'key', 'state'] as const) {
    if (!values[f]) throw new WitnessError('E_CONFIG', `missing --${f}`, { file: 'witness cosigner serve', field: `--${f}` });
  }
  if (!values.log?.length) throw new WitnessError('E_CONFIG', 'at least one --log LOG.vkey', { file: 'witness cosigner serve', field: '--log' });
  const { host, port } = parseListen(values.listen!);
  const key = loadNoteSigner(values.key!);
  if (key.alg !== ALG_COSIGNATURE_V1) throw new WitnessError('E_CONFIG', 'not a cosigner key (make one with witness keygen --cosigner)', { file: vkeyPathOf(values.key!), field: '--key' });
  const logs = values.log.map((f) => {
    const k = loadVerifierKey(f, '--log');
    if (k.alg !== ALG_ED25519) throw new WitnessError('E_CONFIG', 'a log key has type 0x01', { file: f, field: '--log' });
    return k;
  });
  const stateDir = path.resolve(values.state!);
  if (values.user && process.getuid?.() === 0) {
    preloadFlock(); // as root: the unprivileged user may not be able to read node_modules
    dropTo(values.user, stateDir);
  }
  const server = new CosignerServer({ stateDir, key, logs });
  const addr = await server.listen(host, port);
  // stdout carries data: the bound address, so a caller that asked for port 0 learns the port.
  process.stdout.write(`listening ${addr.address}:${addr.port}\n`);
  log.info({ address: addr.address, port: addr.port, witness: key.name, logs: logs.map((l) => l.name), uid: process.getuid?.() }, 'cosigner serving');
  await new Promise<void>((resolve) => {
    const stop = (): void => { resolve(); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await server.close();
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'serve') return serve(rest);
  process.stderr.write(USAGE);
  return sub === undefined || sub === '-h' || sub === '--help' ? 0 : 2;
}
