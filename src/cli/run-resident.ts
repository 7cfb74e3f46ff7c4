import { closeSync, writeSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { WitnessError } from '../errors.js';
import {
  FRAME_JSON, FrameReader, jsonFrame, RESIDENT_PROTOCOL, residentSocketPath, type EndAnswer, type HelloAnswer,
} from '../daemon/resident-protocol.js';
import { resolveStateDir } from '../ledger/state-dir.js';
import { GuardedAgent, removeRunCgroup, type RootExit, type SpawnTracer } from '../sensor/guardian.js';
import { agentAttributes } from './run-agent.js';
import type { RunContext } from './run-entry.js';
import type { RunSettings } from './run-flags.js';
import type { Survivor } from './run-tree.js';
import { runExitCode, within } from './run-util.js';

/**
 * `witness run` through a running daemon (docs/resident.md). The daemon's
 * sensor, loaded and attached, observes the tree, and the daemon records the
 * session with the very code a standalone run uses (run-session.ts):
 * decode, attribution, NDJSON, the session ledger and its signatures. This
 * process keeps what must be its own: the guardian (the agent inherits its
 * terminal and cgroup), the output file or stdout (the daemon's lines are
 * relayed to it), signals, the linger, and the exit code. It imports nothing
 * heavy, which is what makes a call cheap.
 *
 * `runResident` answers `{ fallback }` when no daemon can record the run (none
 * listens, it refuses, another budget): nothing has been spawned then, and
 * the caller loads its own sensor.
 */

const sleepSync = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };

async function warn(obj: Record<string, unknown>, msg: string): Promise<void> {
  const { log } = await import('../log.js');
  log.warn(obj, msg);
}

/** Paths as the witness's own cwd resolves them: the daemon's cwd is not ours. */
function absolute(s: RunSettings): RunSettings {
  return {
    ...s,
    ...(s.sessionDir !== undefined ? { sessionDir: resolve(s.sessionDir) } : {}),
    ...(s.signKey !== undefined ? { signKey: resolve(s.signKey) } : {}),
    ...(s.manifest !== undefined ? { manifest: resolve(s.manifest) } : {}),
    ...(s.track !== undefined ? { track: s.track.map((p) => resolve(p)) } : {}),
  };
}

export class ResidentClient {
  private readonly reader = new FrameReader();
  private replies: ((m: Record<string, unknown>) => void)[] = [];
  private endAnswer: EndAnswer | null = null;
  private ending = false;
  private outputBroken = false;
  broken: string | null = null;
  /** the stream broke before this run asked to end it (the daemon stopped or died) */
  onBroken: (why: string) => void = () => {};
  /** the end answer, or the stream's close: what `end` waits for (not the close after the answer) */
  private settled: () => void = () => {};
  private readonly ended = new Promise<void>((res) => { this.settled = res; });

  /** where the daemon's output lines go (this run's stdout or --out file) */
  fd = 1;

  private constructor(private readonly sock: Socket, readonly hello: HelloAnswer, firstFrames: Buffer) {
    sock.on('data', (c: Buffer) => this.onData(c));
    sock.on('error', (err) => { this.broken ??= err.message; });
    sock.once('close', () => {
      if (!this.endAnswer) this.broken ??= 'the daemon closed the stream before the end';
      if (!this.endAnswer && !this.ending) this.onBroken(this.broken ?? 'closed');
      for (const r of this.replies.splice(0)) r({ ok: false, error: { code: 'internal', message: this.broken ?? 'closed' } });
      this.settled();
    });
    if (firstFrames.length > 0) this.onData(firstFrames);
  }

  /** Connects and says hello; a string (why) means: run with a sensor of your own. */
  static async connect(timeoutMs = 1000): Promise<ResidentClient | string> {
    const path = residentSocketPath();
    const sock = createConnection(path);
    const reader = new FrameReader();
    const got = await new Promise<{ hello: Record<string, unknown>; rest: Buffer } | string>((res) => {
      const timer = setTimeout(() => res(`no answer from ${path} within ${timeoutMs} ms`), timeoutMs);
      const done = (v: { hello: Record<string, unknown>; rest: Buffer } | string): void => { clearTimeout(timer); sock.removeAllListeners('data'); res(v); };
      sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? `no daemon at ${path}` : `${path}: ${err.message}`));
      sock.once('connect', () => sock.write(jsonFrame({ op: 'hello', protocol: RESIDENT_PROTOCOL })));
      sock.once('close', () => done(`${path} closed the connection`));
      let held = Buffer.alloc(0);
      sock.on('data', (c: Buffer) => {
        held = Buffer.concat([held, c]);
        let frames;
        try { frames = reader.push(c); } catch (err) { return done((err as Error).message); }
        const f = frames[0];
        if (!f) return;
        if (f.kind !== FRAME_JSON) return done('the daemon answered hello with output');
        // the bytes after the first frame belong to the session's own reader
        done({ hello: f.json, rest: held.subarray(4 + held.readUInt32LE(0)) });
      });
    });
    if (typeof got === 'string' || got.hello.ok !== true) {
      sock.destroy();
      return typeof got === 'string' ? got : `the daemon refused: ${String((got.hello.error as { message?: string } | undefined)?.message ?? 'no reason')}`;
    }
    return new ResidentClient(sock, got.hello as unknown as HelloAnswer, got.rest);
  }

  /** The daemon's kernel budget is what the tree would get: a run asking for another must have its own sensor. */
  budgetMismatch(s: RunSettings): string | null {
    const h = this.hello;
    if ((s.budgetEvents === undefined || s.budgetEvents === h.budget_events) && (s.budgetWindowMs === undefined || s.budgetWindowMs === h.budget_window_ms)) return null;
    return `the daemon's budget (${h.budget_events} per ${h.budget_window_ms} ms) is not the one asked for`;
  }

  request(obj: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((res) => {
      if (this.sock.destroyed) return res({ ok: false, error: { message: this.broken ?? 'the daemon is gone' } });
      this.replies.push(res);
      this.sock.write(jsonFrame(obj));
    });
  }

  async ask(obj: Record<string, unknown>, what: string): Promise<Record<string, unknown>> {
    const a = await this.request(obj);
    if (a.ok !== true) {
      const e = a.error as { code?: string; message?: string } | undefined;
      throw new WitnessError('E_KERNEL', `the daemon would not ${what}: ${e?.message ?? 'no reason'}${e?.code ? ` (${e.code})` : ''}`);
    }
    return a;
  }

  /** The tree is done: the daemon seals the session and answers the summary (null: the stream broke). */
  async end(result: RootExit, survivors: Survivor[]): Promise<string | null> {
    this.ending = true;
    if (!this.sock.destroyed) {
      this.sock.write(jsonFrame({ op: 'end', code: result.code, signal: result.signal, survivors }));
      // the answer comes once the session is sealed; the daemon's hang-up after it is not waited for
      await this.ended;
      this.sock.destroy();
    }
    return this.endAnswer?.summary ?? null;
  }

  destroy(): void {
    this.ending = true;
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames;
    try { frames = this.reader.push(chunk); } catch (err) {
      this.broken ??= (err as Error).message;
      this.sock.destroy();
      return;
    }
    for (const f of frames) {
      if (f.kind !== FRAME_JSON) this.output(f.bytes);
      else if (f.json.op === 'end') { this.endAnswer = f.json as unknown as EndAnswer; this.settled(); }
      else this.replies.shift()?.(f.json);
    }
  }

  /**
   * The daemon's lines, to our output as they come. A blocking write: a reader that
   * stalls stalls this relay, the socket fills, and the daemon drops lines past its bound
   * (counted in the session, as a standalone run's own stdout sink would).
   */
  private output(buf: Buffer): void {
    for (let off = 0; off < buf.length && !this.outputBroken;) {
      try {
        off += writeSync(this.fd, buf, off, buf.length - off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') { sleepSync(1); continue; }
        this.outputBroken = true; // the reader went away (EPIPE): nothing more reaches it
      }
    }
  }

  /** A last heartbeat of our own when the stream broke: the output says what happened, as standalone. */
  async brokenHeartbeat(json: boolean): Promise<void> {
    const [{ heartbeat }, { humanLine }] = await Promise.all([import('../sensor/heartbeat.js'), import('./format.js')]);
    const stats = {
      kernelEmitted: {}, kernelDropped: {}, kernelSuppressed: {}, delivered: {}, loss: { residentStreamBroken: 1 },
      pollErrors: 0, pollFatalErrno: 0, batches: 0, records: 0, bytes: 0, userDropped: 0, closed: true,
      decoded: 0, decodeErrors: 0, droppedTotal: 0, suppressedSummarized: {},
    };
    const hb = heartbeat({ stats: () => stats, dropsByProcess: () => [] }, new Date(), stats);
    this.output(Buffer.from(`${json ? JSON.stringify(hb) : humanLine(hb, true)}\n`));
  }
}

/** Asks the daemon now, so its answer is in by the time the flags and the agent's identity are settled. */
export function connectResident(): Promise<ResidentClient | string> {
  return ResidentClient.connect();
}

export async function runResident(ctx: RunContext, connecting: Promise<ResidentClient | string>): Promise<number | { fallback: string }> {
  const { settings: s, fd } = ctx;
  const client = await connecting;
  if (typeof client === 'string') return { fallback: client };
  const budget = client.budgetMismatch(s);
  if (budget !== null) { client.destroy(); return { fallback: budget }; }
  client.fd = fd;
  // who the agent runs as, as this process settled it; the daemon adds its own pid (witness.sensor.resident_pid)
  const agentAttrs = agentAttributes(ctx.plan, ctx.allowIoUring, ctx.cgroup);
  const opening = client.request({ op: 'session', plan: { settings: absolute(s), json: ctx.json, stateDir: resolveStateDir(), agentAttrs } });
  const tracer: SpawnTracer = {
    // the daemon follows this guardian (our child): asked right behind the session, answered once it is open
    arm: async (g) => { await client.ask({ op: 'trace', guardian: g }, `follow guardian ${g}`); },
    // the daemon adds the held agent to its kernel traced set, opens its scope and seals sensor.start
    confirm: async (pid) => { await client.ask({ op: 'root', pid }, `trace pid ${pid}`); return true; },
  };
  // The guardian starts while the daemon opens the session; it forks nothing before "trace" is answered.
  // The child's stdout must not mix into an NDJSON stdout: send it to stderr then.
  const agent = new GuardedAgent(tracer, ctx.shim, {
    command: s.command, cred: ctx.plan.cred, cgroup: ctx.cgroup, allowIoUring: ctx.allowIoUring, env: ctx.plan.env,
    stdio: ['inherit', ctx.toStdout && ctx.json ? 2 : 'inherit', 'inherit'],
  });
  const opened = await opening;
  if (opened.ok !== true) {
    // the daemon would not record this run: the guardian is told to end before it forks, and this run uses its own sensor
    client.destroy();
    await agent.rootExit;
    return { fallback: `the daemon would not open the session: ${String((opened.error as { message?: string } | undefined)?.message ?? 'no reason')}` };
  }
  let endedUnobserved = false;
  // Nothing observes the tree once the daemon's stream breaks: end it, as the guardian does when the witness dies.
  client.onBroken = (why) => {
    endedUnobserved = true;
    process.stderr.write(`witness run: the daemon's stream broke (${why}); ending the agent's tree, it must not run on unobserved\n`);
    void agent.finish('kill');
  };
  let rootPid = -1;
  let startError: Error | undefined;
  try {
    rootPid = await agent.started;
  } catch (err) {
    startError = err as Error;
  }
  if (agent.cgroupError) await warn({ cgroup: ctx.cgroup, err: agent.cgroupError }, 'agent not placed in its cgroup; the tree is ended by ancestry only');
  const forward = (sig: NodeJS.Signals): void => { agent.signal(sig); };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);

  const exited = await agent.rootExit;
  // a tree ended because nothing observed it any more: SIGKILL is what happened to it, whatever the guardian reported
  const result: RootExit = endedUnobserved ? { code: null, signal: 'SIGKILL' } : exited;
  // Descendants that outlive the root stay traced until they exit, up to --linger; then they are named and ended.
  const lingered = await within(agent.treeEmpty, s.lingerMs);
  // the /proc scan's module only when something outlived the linger (a thin client loads what it uses)
  const survivors = lingered || rootPid < 0 ? [] : (await import('./run-tree.js')).treeSurvivors(agent.guardian.pid!);
  if (survivors.length > 0 && client.broken === null) await client.request({ op: 'linger', survivors });
  await agent.finish(s.leaveRunning ? 'leave' : 'kill');
  const cgroupRemoved = s.leaveRunning && survivors.length > 0 ? false : removeRunCgroup(ctx.cgroup);
  if (!cgroupRemoved) await warn({ cgroup: ctx.cgroup }, 'run cgroup left in place (processes left running)');
  const summary = client.broken === null ? await client.end(result, survivors) : null;
  if (summary === null) {
    await client.brokenHeartbeat(ctx.json);
    await warn({ err: client.broken }, 'resident stream broke; records after the break are missing (the daemon seals the session if it can, else the next witness run does)');
  }
  if (fd !== 1) closeSync(fd);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, forward);
  if (summary !== null) process.stderr.write(summary);
  return runExitCode(s.command[0]!, startError, agent.execError, result.code, result.signal);
}
