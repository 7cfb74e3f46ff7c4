import { WitnessError } from '../errors.js';
import { resolveUser, type AgentCredentials } from '../sensor/guardian.js';

/** Who the agent runs as, and why: the record says so (`witness.agent.*`). */
export interface AgentPlan {
  cred: AgentCredentials;
  privileged: boolean;
  /** how the identity was chosen */
  source: '--user' | 'SUDO_USER' | '--as-root';
  env: NodeJS.ProcessEnv;
}

export const ROOT_REFUSAL = 'refusing to run the command as root: a root agent can read the signing key, rewrite and ' +
  're-sign its own record, and kill the witness. Pass --user USER[:GROUP] (e.g. --user nobody) to run it unprivileged, ' +
  'or --as-root to accept that its record is only as good as its word';

/**
 * --user USER[:GROUP] → that user (initgroups); under sudo → SUDO_USER;
 * --as-root → root, marked privileged. Root without any of them is refused
 * rather than silently demoted to `nobody` (docs/ledger.md, "Who the agent runs as").
 */
export async function planAgent(opts: { user?: string; asRoot: boolean }, env: NodeJS.ProcessEnv = process.env, resolve = resolveUser): Promise<AgentPlan> {
  if (opts.asRoot && opts.user !== undefined) {
    throw new WitnessError('E_CONFIG', '--as-root and --user exclude each other: choose who the agent runs as', { file: 'witness run', field: '--as-root' });
  }
  if (opts.asRoot) {
    const cred: AgentCredentials = {
      uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [0], name: 'root', home: env.HOME ?? '/root',
    };
    return { cred, privileged: true, source: '--as-root', env: { ...env } };
  }
  let spec = opts.user;
  let source: AgentPlan['source'] = '--user';
  if (spec === undefined && env.SUDO_USER && env.SUDO_USER !== 'root') {
    spec = env.SUDO_USER;
    source = 'SUDO_USER';
  }
  if (spec === undefined) throw new WitnessError('E_CONFIG', ROOT_REFUSAL, { file: 'witness run', field: '--user' });
  let cred: AgentCredentials;
  try {
    cred = await resolve(spec);
  } catch (err) {
    if (source === 'SUDO_USER') throw new WitnessError('E_CONFIG', `SUDO_USER: ${(err as Error).message}; pass --user USER`, { file: 'witness run', field: 'SUDO_USER' });
    throw err;
  }
  if (cred.uid === 0) {
    throw new WitnessError('E_CONFIG', `${source} ${spec} is root; ${ROOT_REFUSAL.slice(ROOT_REFUSAL.indexOf('Pass'))}`, { file: 'witness run', field: source });
  }
  return { cred, privileged: false, source, env: { ...env, HOME: cred.home, USER: cred.name, LOGNAME: cred.name } };
}

/** The plan as record attributes (sensor.start, session.json). */
export function agentAttributes(plan: AgentPlan, allowIoUring: boolean, cgroup: string | null): Record<string, string | number | boolean | null | string[]> {
  return {
    'witness.agent.privileged': plan.privileged,
    'witness.agent.uid': plan.cred.uid,
    'witness.agent.gid': plan.cred.gid,
    'witness.agent.groups': plan.cred.groups.map(String),
    'witness.agent.user': plan.cred.name,
    'witness.agent.user_source': plan.source,
    'witness.agent.io_uring': allowIoUring ? 'allowed' : 'denied',
    'witness.agent.cgroup': cgroup,
  };
}
