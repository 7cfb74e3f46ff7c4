import { reportCommandError } from './command-error.js';

type CommandModule = { run: (argv: string[]) => Promise<number> };

/**
 * `witness <command> [...]`. Each command lives in its own module, loaded
 * lazily so `witness verify` never pays for loading the native sensor.
 * A command module exports `run(argv): Promise<number>` (the exit code).
 */
const COMMANDS: Record<string, { load: () => Promise<CommandModule>; help: string }> = {
  run: { load: () => import('./run-entry.js'), help: 'run [--json] [--out FILE] -- CMD [ARGS...]   trace CMD and its descendants' },
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
    return reportCommandError(name, err);
  }
}
