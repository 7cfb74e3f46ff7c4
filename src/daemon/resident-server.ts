import { existsSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { createConnection, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { WitnessError } from '../errors.js';
import { log } from '../log.js';
import { closeRootOnly, listenRootOnly } from '../scope/root-socket.js';
import { RunSession, within } from '../cli/run-session.js';
import type { Survivor } from '../cli/run-tree.js';
import { discardPreparedSessions, prepareSession, takePreparedSession } from '../ledger/session-prepare.js';
import { loadNative } from '../sensor/native.js';
import { bootToEpochOffsetNs } from '../sensor/ndjson.js';
import { expandHome } from '../sensor/sensitive.js';
import type { WitnessSensor } from '../sensor/sensor.js';
import type { SuppressedEvent } from '../sensor/types.js';
import {
  FRAME_JSON, FrameReader, jsonFrame, RESIDENT_PROTOCOL,
  type EndAnswer, type HelloAnswer, type ResidentError, type ResidentErrorCode,
} from './resident-protocol.js';
import { ResidentRouter } from './resident-router.js';
import { checkPlan, checkResult, checkSurvivors } from './resident-plan.js';
import { ResidentRun, SocketLineSink } from './resident-run.js';

/**
 * The daemon's resident socket: `witness run` asks here to have its agent
 * traced by the daemon's already-attached sensor (docs/resident.md).
 *
 * Who may ask: root only. The socket file is root-owned 0600 (the kernel
 * checks that at connect(2)), and every accepted connection is checked again
 * by the peer's credentials (SO_PEERCRED, through the addon): a socket file
 * whose mode was loosened, or a descriptor leaked into the agent, still
 * answers a non-root peer with a refusal and nothing else.
 *
 * What it may ask: only to trace its own guardian's one child. The guardian
 * must be the peer's child and the root the guardian's child (/proc parent
 * links, checked while the root is held by the guardian before its first
 * instruction, so neither pid can be reused meanwhile); nothing can be
 * untraced through this socket, and a session sees only its own tree.
 */

export interface PeerCred { pid: number; uid: number; gid: number }

export interface ResidentServerOptions {
  path: string;
  sensor: WitnessSensor;
  peerCred: (fd: number) => PeerCred;
  traceAll: boolean;
  budgetEvents: number;
  budgetWindowMs: number;
  /** registers the client's own sensitive paths (its state, session, key) in the daemon's kernel set */
  addSensitive: (paths: string[]) => void;
  /** bytes queued to a slow client before whole batches are dropped (counted) */
  maxQueuedBytes?: number;
  /** how long "end" waits for the guardian's exit record */
  barrierTimeoutMs?: number;
}

export interface ResidentStats { connections: number; refused: number; sessions: number; routed: number; dropped: number }

/** /proc/PID/stat's parent pid; null when the process is gone or a zombie. */
export function parentOf(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' || f[0] === 'X' ? null : Number(f[1]);
  } catch {
    return null;
  }
}

interface Conn {
  sock: Socket;
  cred: PeerCred;
  helloed: boolean;
  run: ResidentRun | null;
  ended: boolean;
  failed: boolean;
  /** the requests, one after the other, then the seal */
  chain: Promise<void>;
}

const isPid = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 1 && v <= 0x3fffffff;

export class ResidentServer {
  readonly router = new ResidentRouter();
  readonly stats: ResidentStats = { connections: 0, refused: 0, sessions: 0, routed: 0, dropped: 0 };
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** open connections: close() seals their sessions before it hangs up */
  private readonly conns = new Set<Conn>();

  constructor(private readonly opts: ResidentServerOptions) {}

  static async listen(opts: ResidentServerOptions): Promise<ResidentServer> {
    const s = new ResidentServer(opts);
    await s.start();
    return s;
  }

  async start(): Promise<void> {
    const path = this.opts.path;
    if (existsSync(dirname(path))) await clearStale(path);
    this.server = await listenRootOnly(path, 'resident', (sock) => this.accept(sock));
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // sessions first, while their clients still listen: sealed as their clients will end them (SIGKILL)
    await Promise.all([...this.conns].map((c) => (c.chain = c.chain.then(() => this.abandon(c)))));
    discardPreparedSessions();
    await closeRootOnly(server, this.sockets, this.opts.path);
  }

  /** The daemon's `suppressed` summaries: a tree process's go to its session too. */
  onSuppressed(ev: SuppressedEvent): void {
    const t = this.router.targetOf(ev.pid);
    if (t instanceof ResidentRun) t.deliverEvent(ev);
  }

  /** The daemon's raw batches, before decoding. */
  onRawBatch(ab: ArrayBuffer): void {
    this.router.route(ab);
  }

  private accept(sock: Socket): void {
    this.stats.connections++;
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let cred: PeerCred;
    try {
      cred = this.opts.peerCred((sock as unknown as { _handle: { fd: number } })._handle.fd);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'resident socket: no peer credentials; refusing');
      return this.refuse(sock, 'refused', 'no peer credentials');
    }
    if (cred.uid !== 0) {
      log.warn({ pid: cred.pid, uid: cred.uid }, 'resident socket: refusing a non-root peer');
      return this.refuse(sock, 'refused', `peer uid ${cred.uid} is not root: only root may ask the daemon to trace`);
    }
    const reader = new FrameReader();
    // requests one at a time, in order: opening a session is asynchronous
    const conn: Conn = { sock, cred, helloed: false, run: null, ended: false, failed: false, chain: Promise.resolve() };
    this.conns.add(conn);
    sock.on('close', () => { conn.chain = conn.chain.then(() => this.abandon(conn)).finally(() => this.conns.delete(conn)); });
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try { frames = reader.push(chunk); } catch (err) { return this.fail(conn, 'bad_request', (err as Error).message); }
      for (const f of frames) {
        if (f.kind !== FRAME_JSON) return this.fail(conn, 'bad_request', 'a client sends JSON frames only');
        conn.chain = conn.chain.then(() => (conn.failed || conn.ended ? undefined : this.handle(conn, f.json)))
          .catch((err: Error) => this.fail(conn, 'internal', err.message));
      }
    });
  }

  private async handle(c: Conn, req: Record<string, unknown>): Promise<void> {
    const { sock } = c;
    const run = c.run;
    if (req.op === 'hello') {
      if (req.protocol !== RESIDENT_PROTOCOL) return this.fail(c, 'mismatch', `this daemon speaks resident protocol ${RESIDENT_PROTOCOL}, the client ${String(req.protocol ?? 1)}`);
      c.helloed = true;
      sock.write(jsonFrame(this.hello()));
    } else if (!c.helloed) {
      return this.fail(c, 'bad_request', 'hello first');
    } else if (req.op === 'session' && run === null) {
      await this.open(c, req.plan);
    } else if (req.op === 'trace' && run !== null && run.guardian === 0) {
      if (!isPid(req.guardian) || parentOf(req.guardian) !== c.cred.pid) {
        return this.fail(c, 'not_child', `pid ${String(req.guardian)} is not a child of the requesting process ${c.cred.pid}`);
      }
      run.guardian = req.guardian;
      this.router.addGuardian(run);
      sock.write(jsonFrame({ ok: true }));
    } else if (req.op === 'root' && run !== null && run.guardian !== 0 && run.root === 0) {
      const pid = req.pid;
      if (!isPid(pid) || parentOf(pid) !== run.guardian) {
        return this.fail(c, 'not_child', `pid ${String(pid)} is not the child of guardian ${run.guardian}`);
      }
      if (this.router.isMember(pid)) return this.fail(c, 'busy', `pid ${pid} is already traced by another session`);
      try {
        this.opts.sensor.addRoot(pid);
      } catch (err) {
        return this.fail(c, 'internal', `the kernel's traced set refused pid ${pid}: ${(err as Error).message}`);
      }
      const st = this.opts.sensor.stats();
      run.kernelDropsAtStart = st.droppedTotal - st.userDropped;
      this.router.setRoot(run, pid);
      this.stats.sessions++;
      // scope open, sensor.start sealed: before the client lets the agent run its first instruction
      const tr = performance.now();
      run.session.onPid(pid);
      run.session.startTimers();
      log.debug({ root: pid, ledger: run.session.ledger != null, startSealMs: +(performance.now() - tr).toFixed(1) }, 'resident: root traced, sensor.start sealed');
      sock.write(jsonFrame({ ok: true }));
    } else if (req.op === 'linger' && run !== null) {
      // the root's exit record may still be in flight; give it a moment, not forever (as standalone)
      this.opts.sensor.flushSoon();
      await within(run.session.rootExitSeen, 500);
      run.session.outlived(checkSurvivors(req.survivors));
      sock.write(jsonFrame({ ok: true }));
    } else if (req.op === 'end' && run !== null) {
      c.ended = true;
      await this.end(c, run, checkResult(req), checkSurvivors(req.survivors));
    } else {
      return this.fail(c, 'bad_request', `unexpected request ${JSON.stringify(req.op)} here`);
    }
  }

  /** The session as a standalone run opens it; anything it refuses (a bad manifest, key, path) sends the client to its own sensor, which says why. */
  private async open(c: Conn, raw: unknown): Promise<void> {
    const t0 = performance.now();
    let session: RunSession;
    try {
      const plan = checkPlan(raw);
      session = await RunSession.open(plan, { sink: new SocketLineSink(c.sock, this.stats) }, undefined, () => takePreparedSession(plan.stateDir));
    } catch (err) {
      return this.fail(c, 'bad_request', (err as Error).message);
    }
    const sensitive = expandHome(session.sensitivePaths);
    try { this.opts.addSensitive(sensitive); } catch (err) { log.warn({ err: (err as Error).message }, 'resident: sensitive paths not registered'); }
    const clock = { bootToEpochNs: bootToEpochOffsetNs(loadNative().clockOffsets()) };
    const run = new ResidentRun(session, clock, sensitive, this.stats, () => Object.keys(this.opts.sensor.stats().kernelDropped),
      (err) => log.warn({ err: err.message }, 'malformed wire record'));
    try {
      await session.attach(run);
    } catch (err) {
      // nothing ran yet: the session is sealed as such (no exit status), its lock let go
      await session.ledger?.close({ exitCode: null, signal: null, counters: {}, drops: {} }).catch(() => {});
      return this.fail(c, 'internal', `the session could not start its attribution: ${(err as Error).message}`);
    }
    c.run = run;
    log.debug({ ledger: session.ledger != null, openMs: +(performance.now() - t0).toFixed(1) }, 'resident: session open');
    c.sock.write(jsonFrame({ ok: true, session_dir: session.ledger?.dir ?? null }));
  }

  /** The tree is done (the client saw the guardian report it): the rest of its records, then the seal. */
  private async end(c: Conn, run: ResidentRun, result: { code: number | null; signal: NodeJS.Signals | null }, survivors: Survivor[]): Promise<void> {
    // Host-wide tracing puts the guardian's exit on the wire after every record of its tree. The
    // guardian has exited (its parent saw it), so its exit record is in the ring: drain it now
    // rather than at the poll thread's maxLatencyMs. Nothing is decided by the flush: the barrier
    // is still the exit record itself.
    const t0 = performance.now();
    if (this.opts.traceAll) this.opts.sensor.flushSoon();
    const barrier = this.opts.traceAll ? await run.barrier(this.opts.barrierTimeoutMs ?? 2000) : (await sleep(this.opts.barrierTimeoutMs ?? 100), false);
    if (!barrier) log.warn({ guardian: run.guardian }, 'resident: the guardian\'s exit record did not arrive; the session ends on a timeout');
    this.finishStream(run, barrier ? {} : { residentBarrierTimeout: 1 });
    const t1 = performance.now();
    await run.session.survivorsExited(survivors);
    const t2 = performance.now();
    const summary = await run.session.close(result, survivors);
    // where a run's end goes (docs/resident.md): WITNESS_LOG_LEVEL=debug
    log.debug({ guardian: run.guardian, ledger: run.session.ledger != null, barrierMs: +(t1 - t0).toFixed(1), survivorsMs: +(t2 - t1).toFixed(1), sealMs: +(performance.now() - t2).toFixed(1) }, 'resident: session sealed');
    c.run = null;
    const answer: EndAnswer = { op: 'end', ok: true, summary };
    if (!c.sock.destroyed) c.sock.end(jsonFrame(answer));
    this.prepareNext(run);
  }

  /**
   * The state dir's next session made ready once this one is answered (src/ledger/session-prepare.ts):
   * its directory, files, lock and host-ledger note are created off the next run's critical path.
   */
  private prepareNext(run: ResidentRun): void {
    const { ledger } = run.session;
    if (ledger === null || run.session.plan.settings.sessionDir !== undefined || this.server === undefined) return;
    setImmediate(() => {
      if (this.server === undefined) return;
      try { prepareSession(ledger.stateDir); } catch (err) { log.debug({ err: (err as Error).message }, 'resident: the next session could not be prepared'); }
    });
  }

  /** Repeat counters swept while the tree's pids still route here; then the tree leaves the router. */
  private finishStream(run: ResidentRun, loss: Record<string, number>): void {
    try { this.opts.sensor.sweepSuppressed(); } catch (err) { log.warn({ err: (err as Error).message }, 'resident: suppressed sweep failed'); }
    this.router.remove(run);
    const st = this.opts.sensor.stats();
    run.end({ hostKernelDrops: st.droppedTotal - st.userDropped - run.kernelDropsAtStart, ...loss });
  }

  /**
   * The client went away (or this daemon is stopping) before the end: nothing observes the
   * tree through it any more, and the client, or the guardian when the client died, ends the
   * tree by SIGKILL. The session is sealed saying so, as the client's record would have.
   */
  private async abandon(c: Conn): Promise<void> {
    const run = c.run;
    if (run === null) return;
    c.run = null;
    if (run.root === 0) this.router.remove(run);
    else this.finishStream(run, { residentStreamBroken: 1 });
    try {
      await run.session.close({ code: null, signal: 'SIGKILL' }, []);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'resident: an abandoned session could not be sealed');
    }
  }

  private hello(): HelloAnswer {
    const caps = this.opts.sensor.capabilities();
    return {
      ok: true, daemon_pid: process.pid, trace_all: this.opts.traceAll,
      budget_events: this.opts.budgetEvents, budget_window_ms: this.opts.budgetWindowMs,
      probes_attached: caps.filter((p) => p.attached).map((p) => p.name),
      probes_missing: caps.filter((p) => !p.attached).map((p) => p.name),
    };
  }

  private fail(c: Conn, code: ResidentErrorCode, message: string): void {
    c.failed = true;
    this.refuse(c.sock, code, message);
  }

  private refuse(sock: Socket, code: ResidentErrorCode, message: string): void {
    if (code === 'refused') this.stats.refused++;
    const answer: ResidentError = { ok: false, error: { code, message } };
    sock.removeAllListeners('data');
    if (!sock.destroyed) sock.end(jsonFrame(answer));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A socket file left by a dead daemon is removed; a live one, or a non-socket, is an error. */
async function clearStale(path: string): Promise<void> {
  let st;
  try { st = lstatSync(path); } catch { return; }
  if (!st.isSocket()) throw new WitnessError('E_IO', 'exists and is not a socket; remove it or choose another residentSocket path', { file: path });
  const live = await new Promise<boolean>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (live) throw new WitnessError('E_IO', 'another process is serving this resident socket', { file: path });
  unlinkSync(path);
}
