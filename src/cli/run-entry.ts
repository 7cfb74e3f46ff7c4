import type { WitnessTarget } from '../cosigner/push.js';
import { makeRunCgroup, resolveUser, shimPath } from '../sensor/guardian.js';
import { checkPrivileges } from '../sensor/host.js';
import { planAgent, type AgentPlan } from './run-agent.js';
import { hasWitnessFlag, parseRunArgs, runSettings, type RunSettings } from './run-flags.js';
import { str } from './args.js';
import { connectResident, runResident } from './run-resident.js';

/**
 * `witness run`'s entry: the flags, who the agent runs as, the output and the
 * run's cgroup, with node: builtins and a few small modules only. When a
 * daemon runs, it records the session (run-resident.ts, docs/resident.md) and
 * this process never loads the sensor, the decoder, the event schemas, the
 * ledger or the logger; otherwise (or when the daemon cannot) run.ts loads
 * its own sensor.
 */

export interface RunContext {
  settings: RunSettings;
  plan: AgentPlan;
  shim: string;
  /** NDJSON lines (true) or human lines for a terminal */
  json: boolean;
  /** the output is this process's stdout (the agent's stdout then goes to stderr under --json) */
  toStdout: boolean;
  fd: number;
  cgroup: string | null;
  allowIoUring: boolean;
  witnesses: WitnessTarget[];
}

/** Why this run uses its own sensor without asking a daemon; null: ask. */
function residentOff(flags: Record<string, string | boolean>, witnesses: WitnessTarget[]): string | null {
  if (flags['no-resident'] === true) return '--no-resident';
  // the OpenSSL uprobes are this run's own
  if (flags['tls-metadata'] === true) return '--tls-metadata';
  // the cosigning pusher runs beside the session ledger's writer
  if (witnesses.length > 0) return '--witness';
  if (process.env.WITNESS_RESIDENT === 'off') return 'WITNESS_RESIDENT=off';
  return null;
}

export async function run(rawArgv: string[]): Promise<number> {
  // --witness flags are parsed by the cosigner's module, which is heavy: loaded only when there is one
  const { witnesses, argv } = hasWitnessFlag(rawArgv)
    ? (await import('../cosigner/push.js')).takeWitnessFlags(rawArgv)
    : { witnesses: [] as WitnessTarget[], argv: rawArgv };
  const parsed = parseRunArgs(argv);
  const { flags } = parsed;
  let reason = residentOff(flags, witnesses);
  // the daemon's hello is on its way while the rest is settled (resolving the user, in a helper process)
  const connecting = reason === null ? connectResident() : null;
  let ctx: RunContext;
  try {
    ctx = await settle(parsed, witnesses);
  } catch (err) {
    void connecting?.then((c) => { if (typeof c !== 'string') c.destroy(); });
    throw err;
  }
  if (connecting !== null) {
    const r = await runResident(ctx, connecting);
    if (typeof r === 'number') return r;
    reason = r.fallback;
  }
  const [{ log }, { runOwnSensor }] = await Promise.all([import('../log.js'), import('./run.js')]);
  log.debug({ reason }, 'no resident sensor: loading our own');
  return runOwnSensor(ctx);
}

/** Privileges, who the agent runs as, the settings, the output and the cgroup: in standalone's order (same first error). */
async function settle(parsed: ReturnType<typeof parseRunArgs>, witnesses: WitnessTarget[]): Promise<RunContext> {
  const { flags } = parsed;
  checkPrivileges(); // before touching the state dir: the one-line answer a non-root user needs
  // Who the agent runs as is settled before anything is created or spawned.
  const shim = shimPath();
  // the guardian's --resolve runs while the daemon's hello is answered
  const plan = await planAgent({ ...(str(flags, 'user') !== undefined && { user: str(flags, 'user')! }), asRoot: flags['as-root'] === true },
    process.env, (spec) => resolveUser(spec, shim));
  const settings = runSettings(parsed);
  if (plan.privileged) process.stderr.write('witness: WARNING: --as-root: the agent runs as root and could rewrite its own record; the session says so\n');
  const toStdout = settings.out === undefined;
  return {
    settings, plan, shim, toStdout, witnesses,
    json: flags.json === true || !toStdout || !process.stdout.isTTY,
    // --out's checks (safe-path.ts) loaded only with --out: the thin client's every module costs a resident call
    fd: settings.out !== undefined ? (await import('../ledger/safe-path.js')).openOutputFile(settings.out) : 1,
    cgroup: makeRunCgroup(),
    allowIoUring: flags['allow-io-uring'] === true,
  };
}
