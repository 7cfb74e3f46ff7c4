import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { WitnessError } from '../errors.js';
import { PACKAGE_ROOT } from '../package-root.js';
import type { WitnessSensor } from './sensor.js';

/**
 * The agent side of `witness run`: a tiny root guardian (native/exec_shim.c,
 * `witness-exec`) forks the agent with its credentials dropped, io_uring
 * fenced off by seccomp, PR_SET_PDEATHSIG and no_new_privs set, in a cgroup
 * of its own, and stays the tree's child subreaper, so the witness knows when
 * the whole tree (not only the root) has exited and can end what is left.
 */

export interface AgentCredentials {
  uid: number;
  gid: number;
  /** supplementary groups as initgroups(3) computes them (primary gid included) */
  groups: number[];
  name: string;
  home: string;
}

/** witness-exec next to the addon: a fresh build wins over the prebuild, as for the .node. */
export function shimPath(root = PACKAGE_ROOT): string {
  const candidates = [join(root, 'build', 'Release', 'witness-exec'), join(root, 'prebuilds', `linux-${process.arch}`, 'witness-exec')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new WitnessError('E_NATIVE', 'the exec guardian witness-exec is missing; build it with `npm run build:native`', { file: candidates[0]! });
  }
  // Root executes it: a shim another user could replace would run their code as root.
  const st = statSync(found);
  if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new WitnessError('E_NATIVE', `refusing to run an exec guardian that is not root-owned or is group/world-writable (uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)})`, { file: found });
  }
  return found;
}

/**
 * USER[:GROUP] (names or numbers) through NSS, as login(1) would see them. Asynchronous:
 * `witness run` says hello to the daemon while the helper runs (~5-10 ms of a resident call).
 */
export function resolveUser(spec: string, shim = shimPath()): Promise<AgentCredentials> {
  return new Promise((resolve, reject) => {
    execFile(shim, ['--resolve', spec], { encoding: 'utf8' }, (err, text, stderr) => {
      if (err) {
        const msg = String(stderr || err.message).trim();
        return reject(new WitnessError('E_CONFIG', msg || `cannot resolve '${spec}'`, { file: 'witness run', field: '--user' }));
      }
      const [uid, gid, home, name, groups] = text.split('\n');
      const ids = [uid, gid, ...(groups ?? '').split(',')].map((x) => (/^\d+$/.test(x ?? '') ? Number(x) : NaN));
      if (ids.some((n) => !Number.isInteger(n)) || !home || !name) {
        return reject(new WitnessError('E_NATIVE', `the exec guardian answered an unreadable identity for '${spec}'`, { file: shim, field: '--user' }));
      }
      resolve({ uid: ids[0]!, gid: ids[1]!, home, name, groups: ids.slice(2) });
    });
  });
}

const RUN_CGROUP_PREFIX = 'witness-run-';
const STALE_AFTER_MS = 60_000;

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Run cgroups a witness could not remove: it was killed (its tree died with it), or --leave-running
 * left survivors in it that have exited since. Each is removed once its witness is gone; rmdir
 * refuses a cgroup that still holds a process, so survivors keep theirs until they exit.
 * Returns how many were removed (a directory younger than minAgeMs is kept).
 */
export function removeStaleRunCgroups(parent: string, minAgeMs = STALE_AFTER_MS): number {
  let removed = 0;
  let names: string[];
  try { names = readdirSync(parent); } catch { return 0; }
  for (const name of names) {
    const m = name.startsWith(RUN_CGROUP_PREFIX) ? /^(\d+)-/.exec(name.slice(RUN_CGROUP_PREFIX.length)) : null;
    if (!m || alive(Number(m[1]))) continue;
    const dir = join(parent, name);
    try {
      // a witness in another pid namespace looks dead from here: its cgroup is empty only in the
      // moment between its mkdir and its agent joining, so a young one is left alone
      if (Date.now() - statSync(dir).ctimeMs < minAgeMs) continue;
      rmdirSync(dir);
      removed++;
    } catch { /* not empty (survivors), or raced with another run */ }
  }
  return removed;
}

/** A fresh cgroup v2 directory under the witness's own cgroup, after removing stale ones; null where there is none to make. */
export function makeRunCgroup(): string | null {
  try {
    const mount = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .map((l) => l.split(' - '))
      .find(([, fs]) => fs?.startsWith('cgroup2 '))?.[0]?.split(' ')[4];
    const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'))?.slice(3);
    if (!mount || own === undefined) return null;
    // pid + clock: unique on this host (a run's stale directory never has our pid and our nanosecond); node:crypto costs
    // the thin `witness run` client ~4 ms to load, and the name needs no secrecy (the parent is root's own cgroup)
    const parent = join(mount, own);
    removeStaleRunCgroups(parent);
    const dir = join(parent, `${RUN_CGROUP_PREFIX}${process.pid}-${process.hrtime.bigint().toString(36)}`);
    mkdirSync(dir, { mode: 0o755 });
    return dir;
  } catch {
    return null;
  }
}

export function removeRunCgroup(dir: string | null): boolean {
  if (!dir) return true;
  try { rmdirSync(dir); return true; } catch { return false; }
}

export interface GuardedOptions {
  command: string[];
  cred: AgentCredentials;
  cgroup: string | null;
  allowIoUring: boolean;
  stdio: ['inherit', number | 'inherit', 'inherit'];
  env: NodeJS.ProcessEnv;
  /** runs once the agent is forked and traced, before it runs a single instruction (open its scope here) */
  onPid?: (pid: number) => void;
}

export interface RootExit { code: number | null; signal: NodeJS.Signals | null }

/**
 * Who marks the agent as traced. The local sensor arms its one-shot fork hook
 * for the guardian (the kernel marks the child at fork); the daemon's resident
 * socket is asked instead (src/cli/run-resident.ts). Either way the agent runs
 * no instruction of its own before `confirm` said yes.
 */
export interface SpawnTracer {
  /** before "go": arrange for the guardian's one child to be traced */
  arm(guardianPid: number): void | Promise<void>;
  /** after "pid N", before "run": true when the child is traced (false: it is killed) */
  confirm(pid: number): boolean | Promise<boolean>;
}

/** The local sensor's one-shot: armed for the guardian, consumed by its fork. */
export function localTracer(sensor: WitnessSensor): SpawnTracer {
  return {
    arm: (g) => sensor.native.armSpawn(g),
    // The fork tracepoint ran before the guardian could write its "pid" line.
    confirm: () => sensor.native.disarmSpawn() === 0,
  };
}

function signalName(n: number): NodeJS.Signals | null {
  if (n === 0) return null;
  const hit = Object.entries(constants.signals).find(([, v]) => v === n);
  return (hit?.[0] as NodeJS.Signals | undefined) ?? null;
}

/** `witness run`'s agent: spawned through the guardian, marked as a traced root at its fork. */
export class GuardedAgent {
  readonly guardian: ChildProcess;
  /** resolves with the agent's pid once it is forked (and traced), or rejects */
  readonly started: Promise<number>;
  /** the agent root's own exit status */
  readonly rootExit: Promise<RootExit>;
  /** resolves once every process of the tree has exited */
  readonly treeEmpty: Promise<void>;
  /** errno text of a failed exec; set before rootExit resolves */
  execError: string | undefined;
  /** the cgroup placement failed (errno text): the tree is ended by ancestry only */
  cgroupError: string | undefined;
  pid = -1;
  private readonly control: Socket;
  private readonly guardianExit: Promise<void>;
  private killedCount = 0;

  constructor(sensor: WitnessSensor | SpawnTracer, shim: string, opts: GuardedOptions) {
    const tracer = 'arm' in sensor ? sensor : localTracer(sensor);
    const args = ['--uid', String(opts.cred.uid), '--gid', String(opts.cred.gid)];
    if (opts.cred.groups.length > 0) args.push('--groups', opts.cred.groups.join(','));
    if (opts.cgroup) args.push('--cgroup', opts.cgroup);
    if (opts.allowIoUring) args.push('--allow-io-uring');
    this.guardian = spawn(shim, [...args, '--', ...opts.command], { stdio: [...opts.stdio, 'pipe'], env: opts.env });
    this.control = this.guardian.stdio[3] as Socket;
    let onStart!: (pid: number) => void; let onStartErr!: (e: Error) => void;
    let onExit!: (r: RootExit) => void; let onEmpty!: () => void;
    this.started = new Promise((res, rej) => { onStart = res; onStartErr = rej; });
    this.rootExit = new Promise((res) => { onExit = res; });
    this.treeEmpty = new Promise((res) => { onEmpty = res; });
    this.started.catch(() => {});
    this.guardianExit = new Promise((res) => {
      this.guardian.once('close', (code, signal) => {
        // a guardian gone before reporting: the agent's status is unknown, say so through the guardian's
        onStartErr(new WitnessError('E_KERNEL', `the exec guardian exited before starting the command (code ${code}, signal ${signal})`));
        onExit({ code: code ?? 128, signal });
        onEmpty();
        res();
      });
    });
    this.guardian.once('error', (err) => onStartErr(new WitnessError('E_NATIVE', `cannot start the exec guardian: ${err.message}`, { file: shim, cause: err })));
    let buf = '';
    this.control.setEncoding('utf8');
    this.control.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [word, a, b] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (word === 'pid') {
          this.pid = Number(a);
          const pid = this.pid;
          const decide = (traced: boolean): void => {
            if (!traced) {
              process.kill(pid, 'SIGKILL');
              onStartErr(new WitnessError('E_KERNEL', 'the fork probe did not capture the spawned command; refusing to let it run untraced'));
              return;
            }
            try { opts.onPid?.(pid); } finally { this.control.write('run\n'); }
            onStart(pid);
          };
          let answer: boolean | Promise<boolean>;
          try { answer = tracer.confirm(pid); } catch (err) { answer = Promise.reject(err); }
          if (typeof answer === 'boolean') decide(answer);
          else answer.then(decide, (err: Error) => { process.kill(pid, 'SIGKILL'); onStartErr(err); });
        } else if (word === 'nocgroup') this.cgroupError = errnoText(Number(a));
        else if (word === 'execerr') this.execError = errnoText(Number(a));
        else if (word === 'exit') onExit({ code: Number(a) >= 0 ? Number(a) : null, signal: signalName(Number(b)) });
        else if (word === 'empty') onEmpty();
        else if (word === 'killed') this.killedCount = Number(a);
      }
    });
    this.control.on('error', () => {}); // EPIPE after the guardian exits: its exit event tells the story
    if (this.guardian.pid !== undefined) {
      let armed: void | Promise<void>;
      try { armed = tracer.arm(this.guardian.pid); } catch (err) { armed = Promise.reject(err); }
      if (armed instanceof Promise) {
        armed.then(() => this.control.write('go\n'), (err: Error) => { onStartErr(err); this.control.end('kill\n'); });
      } else {
        this.control.write('go\n');
      }
    }
  }

  /** Forwards a signal to the agent root (the guardian ignores terminal signals). */
  signal(sig: NodeJS.Signals): void {
    if (this.pid > 0) try { process.kill(this.pid, sig); } catch { /* already gone */ }
  }

  /** "kill": end whatever is left of the tree; "leave": let survivors run on. Resolves when the guardian exits. */
  async finish(mode: 'kill' | 'leave'): Promise<number> {
    this.control.end(`${mode}\n`);
    await this.guardianExit;
    return this.killedCount;
  }
}

function errnoText(n: number): string {
  const hit = Object.entries(constants.errno).find(([, v]) => v === n);
  return hit ? hit[0] : `errno ${n}`;
}
