import { readFileSync, statSync } from 'node:fs';
import { isWitnessError } from '../errors.js';

type CommandModule = { run: (argv: string[]) => Promise<number> };

/**
 * `witness run`'s modules: the thin client's bundle (dist/cli/run-thin.js, scripts/bundle-thin.mjs:
 * one file instead of ~13, ~7 ms of every resident call) while its manifest still names every
 * module it was made from at the size and mtime it was made from; otherwise (a tsc since, no
 * bundler, running from src/) the modules themselves. A stale bundle never runs.
 */
async function loadRun(): Promise<CommandModule> {
  const dir = new URL('.', import.meta.url);
  try {
    const { bundled } = JSON.parse(readFileSync(new URL('run-thin.json', dir), 'utf8')) as { bundled: [string, number, number][] };
    const fresh = bundled.length > 0 && bundled.every(([rel, size, mtimeMs]) => {
      const st = statSync(new URL(`../${rel}`, dir));
      return st.size === size && st.mtimeMs === mtimeMs;
    });
    if (fresh) return await (import(new URL('run-thin.js', dir).href) as Promise<CommandModule>);
  } catch { /* no bundle, or not readable: the modules */ }
  return import('./run-entry.js');
}

/**
 * `witness <command> [...]`. Each command lives in its own module, loaded
 * lazily so `witness verify` never pays for loading the native sensor.
 * A command module exports `run(argv): Promise<number>` (the exit code).
 */
const COMMANDS: Record<string, { load: () => Promise<CommandModule>; help: string }> = {
  run: { load: loadRun, help: 'run [--json] [--out FILE] -- CMD [ARGS...]   trace CMD and its descendants' },
  probe: { load: () => import('./probe.js'), help: 'probe [--json]                               kernel, BTF and which probes attach here' },
  keygen: { load: () => import('./keygen.js'), help: 'keygen --out PREFIX                          make an ed25519 signing key pair' },
  verify: { load: () => import('./verify.js'), help: 'verify [--pubkey FILE] [--full|--fast] [--json] PATH   verify a ledger' },
  pulse: { load: () => import('./pulse.js'), help: 'pulse status|replay ...                      continuity of observation' },
  digest: { load: () => import('./digest.js'), help: 'digest [--window T] [--open]                 write the operator digest' },
  daemon: { load: () => import('./daemon.js'), help: 'daemon [--config FILE] [--check]             host-wide sensor, store, exporters (systemd)' },
  query: { load: () => import('./query.js'), help: 'query [--agent A] [--since 1h] [--event E] [--json]   events from the store' },
  scope: { load: () => import('./scope.js'), help: 'scope open|close|list ...                    bind a tool call to a pid or cgroup (daemon socket)' },
  cosigner: { load: () => import('./cosigner.js'), help: 'cosigner serve --listen H:P --key K --log L.vkey --state DIR   a C2SP witness' },
  prove: { load: () => import('./prove.js'), help: 'prove --event <seq|session:seq> STATE        a c2sp.org/tlog-proof for one event' },
  'verify-proof': { load: () => import('./verify-proof.js'), help: 'verify-proof --pubkey K --witness W.vkey FILE   check a .tlog-proof offline' },
  tree: { load: () => import('./tree.js'), help: 'tree --scope T [--run R] [--json]             the process tree a tool call produced' },
};

export function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  witness ${c.help}`);
  return `usage:\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stderr.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`witness: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  try {
    const mod = await command.load();
    return await mod.run(rest);
  } catch (err) {
    if (isWitnessError(err)) {
      // errors that name the command as their file already start with it: say it once
      const prefix = `witness ${name}: `;
      process.stderr.write(`${err.message.startsWith(prefix) ? '' : prefix}${err.message}\n`);
      return err.code === 'E_LEDGER' ? 1 : 2;
    }
    throw err;
  }
}
