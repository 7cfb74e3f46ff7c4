import { existsSync } from 'node:fs';
import { loadConfig, parseConfig } from '../config/load.js';
import type { DaemonConfig } from '../config/schema.js';
import { WitnessDaemon } from '../daemon/daemon.js';
import { loadManifest } from '../manifest/load.js';
import { log } from '../log.js';
import { parseArgs, str } from './args.js';

export const DEFAULT_CONFIG_PATH = '/etc/agent-witness/witness.json';

const USAGE = 'usage: witness daemon [--config FILE] [--check]';

/** The config named by --config, else the default path if present, else built-in defaults. */
function resolveConfig(path: string | undefined): { config: DaemonConfig; source: string } {
  if (path !== undefined) return { config: loadConfig(path), source: path };
  if (existsSync(DEFAULT_CONFIG_PATH)) return { config: loadConfig(DEFAULT_CONFIG_PATH), source: DEFAULT_CONFIG_PATH };
  return { config: parseConfig({}, '(built-in defaults)'), source: '(built-in defaults)' };
}

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { booleans: ['check'], strings: ['config'] }, 'daemon');
  if (positionals.length > 0) {
    process.stderr.write(`witness daemon: unexpected argument '${positionals[0]}'\n${USAGE}\n`);
    return 2;
  }
  const { config, source } = resolveConfig(str(flags, 'config'));
  if (flags.check === true) {
    // the manifest too: a reload or restart with a broken one should fail here, in ExecStartPre
    if (config.manifest !== undefined) loadManifest(config.manifest);
    process.stderr.write(`witness daemon: ${source}: ok${config.manifest !== undefined ? `; ${config.manifest}: ok` : ''}\n`);
    return 0;
  }

  // Signals that arrive while the probes load (~1.5 s) are held, not fatal:
  // a stop request is honoured right after start, a reload is moot.
  let early: NodeJS.Signals | null = null;
  const hold = (sig: NodeJS.Signals): void => { if (sig !== 'SIGHUP') early = sig; };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, hold);
  let daemon: WitnessDaemon;
  // a blind sensor ends the daemon with a failure, so systemd restarts it
  let blind: (() => void) | null = null;
  let fatal = false;
  const onSensorFatal = (): void => { fatal = true; if (blind) blind(); else early = 'SIGTERM'; };
  try {
    daemon = await WitnessDaemon.start({ config, configPath: source, onSensorFatal });
  } finally {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(sig, hold);
  }
  log.info({ config: source, stateDir: daemon.stateDir }, 'daemon started');

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: NodeJS.Signals): void => {
      if (stopping) {
        // a second SIGINT from an impatient terminal: leave now, without the drain
        if (sig === 'SIGINT') process.exit(130);
        return;
      }
      stopping = true;
      log.info({ signal: sig }, 'stopping');
      const done = (code: number): void => {
        // Everything is flushed and closed; a handle some library left open
        // (an HTTP keep-alive socket) must not keep a stopped daemon alive.
        setTimeout(() => process.exit(code), 2000).unref();
        resolve(code);
      };
      daemon.stop().then(() => done(fatal ? 1 : 0), (err: unknown) => {
        log.error({ err: (err as Error).message }, 'unclean stop');
        done(1);
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    blind = () => stop('SIGTERM');
    process.on('SIGHUP', () => { void daemon.reload(); });
    if (early !== null) stop(early);
  });
}
