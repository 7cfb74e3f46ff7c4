import { existsSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { createConnection, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { WitnessError } from '../errors.js';
import { log } from '../log.js';
import { closeRootOnly, listenRootOnly } from '../scope/root-socket.js';
import type { WitnessSensor } from '../sensor/sensor.js';
import type { SuppressedEvent } from '../sensor/types.js';
import {
  FRAME_JSON, FrameReader, encodeEvent, jsonFrame, recordsFrameHead,
  type EndAnswer, type HelloAnswer, type ResidentError, type ResidentErrorCode,
} from './resident-protocol.js';
import { kindName, ResidentRouter, type RouteTarget, type RoutedBatch } from './resident-router.js';

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

const isPid = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 1 && v <= 0x3fffffff;

class Session implements RouteTarget {
  root = 0;
  pendingFork: Buffer | null = null;
  readonly routed = new Map<number, number>();
  readonly sent = new Map<number, number>();
  readonly dropped = new Map<number, number>();
  kernelDropsAtStart = 0;
  /** `suppressed` summaries sent */
  summaries = 0;
  private barrierSeen = false;
  private onBarrier: (() => void) | null = null;

  constructor(readonly guardian: number, private readonly sock: Socket, private readonly maxQueued: number, private readonly stats: ResidentStats) {}

  deliver(b: RoutedBatch): void {
    const full = this.sock.destroyed || this.sock.writableLength > this.maxQueued;
    for (const [type, n] of b.byType) {
      this.routed.set(type, (this.routed.get(type) ?? 0) + n);
      const to = full ? this.dropped : this.sent;
      to.set(type, (to.get(type) ?? 0) + n);
      this.stats.routed += n;
      if (full) this.stats.dropped += n;
    }
    if (full) return;
    this.sock.write(recordsFrameHead(b.bytes.length));
    this.sock.write(b.bytes);
  }

  /** a `suppressed` summary of a tree process: the repeats its budget counted instead of writing */
  deliverEvent(ev: SuppressedEvent): void {
    this.summaries++;
    if (!this.sock.destroyed) this.sock.write(jsonFrame({ op: 'event', event: encodeEvent(ev) }));
  }

  onGuardianExit(): void {
    this.barrierSeen = true;
    this.onBarrier?.();
  }

  /** true once the guardian's exit record passed; false when the wait timed out */
  barrier(timeoutMs: number): Promise<boolean> {
    if (this.barrierSeen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.onBarrier = () => { clearTimeout(t); resolve(true); };
    });
  }

  static named(m: Map<number, number>): Record<string, number> {
    const o: Record<string, number> = {};
    for (const [t, n] of m) o[kindName(t)] = (o[kindName(t)] ?? 0) + n;
    return o;
  }
}

export class ResidentServer {
  readonly router = new ResidentRouter();
  readonly stats: ResidentStats = { connections: 0, refused: 0, sessions: 0, routed: 0, dropped: 0 };
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

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
    await closeRootOnly(server, this.sockets, this.opts.path);
  }

  /** The daemon's `suppressed` summaries: a tree process's go to its session too. */
  onSuppressed(ev: SuppressedEvent): void {
    const t = this.router.targetOf(ev.pid);
    if (t instanceof Session) t.deliverEvent(ev);
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
    let session: Session | null = null;
    let helloed = false;
    const fail = (code: ResidentErrorCode, message: string): void => this.refuse(sock, code, message);
    sock.on('close', () => { if (session) this.router.remove(session); });
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try { frames = reader.push(chunk); } catch (err) { return fail('bad_request', (err as Error).message); }
      for (const f of frames) {
        if (f.kind !== FRAME_JSON) return fail('bad_request', 'a client sends JSON frames only');
        const req = f.json;
        if (req.op === 'hello') {
          helloed = true;
          sock.write(jsonFrame(this.hello()));
        } else if (!helloed) {
          return fail('bad_request', 'hello first');
        } else if (req.op === 'trace' && session === null) {
          if (!isPid(req.guardian) || parentOf(req.guardian) !== cred.pid) {
            return fail('not_child', `pid ${String(req.guardian)} is not a child of the requesting process ${cred.pid}`);
          }
          const sensitive = Array.isArray(req.sensitive) ? req.sensitive.filter((p): p is string => typeof p === 'string' && p.startsWith('/')).slice(0, 64) : [];
          try { this.opts.addSensitive(sensitive); } catch (err) { log.warn({ err: (err as Error).message }, 'resident: sensitive paths not registered'); }
          session = new Session(req.guardian, sock, this.opts.maxQueuedBytes ?? 32 << 20, this.stats);
          this.router.addGuardian(session);
          sock.write(jsonFrame({ ok: true }));
        } else if (req.op === 'root' && session !== null && session.root === 0) {
          const pid = req.pid;
          if (!isPid(pid) || parentOf(pid) !== session.guardian) {
            return fail('not_child', `pid ${String(pid)} is not the child of guardian ${session.guardian}`);
          }
          if (this.router.isMember(pid)) return fail('busy', `pid ${pid} is already traced by another session`);
          try {
            this.opts.sensor.addRoot(pid);
          } catch (err) {
            return fail('internal', `the kernel's traced set refused pid ${pid}: ${(err as Error).message}`);
          }
          const st = this.opts.sensor.stats();
          session.kernelDropsAtStart = st.droppedTotal - st.userDropped;
          this.router.setRoot(session, pid);
          this.stats.sessions++;
          sock.write(jsonFrame({ ok: true }));
        } else if (req.op === 'end' && session !== null) {
          void this.end(sock, session);
          return;
        } else {
          return fail('bad_request', `unexpected request ${JSON.stringify(req.op)} here`);
        }
      }
    });
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

  private async end(sock: Socket, s: Session): Promise<void> {
    // Host-wide tracing puts the guardian's exit on the wire after every record of its tree.
    const barrier = this.opts.traceAll ? await s.barrier(this.opts.barrierTimeoutMs ?? 2000) : (await sleep(this.opts.barrierTimeoutMs ?? 100), false);
    // the repeat counters the tree's budget kept: summarised now, while its pids still route here
    try { this.opts.sensor.sweepSuppressed(); } catch (err) { log.warn({ err: (err as Error).message }, 'resident: suppressed sweep failed'); }
    this.router.remove(s);
    const st = this.opts.sensor.stats();
    // every kind the sensor counts, as its own drop table has them (zero included), so a session's record reads the same
    const dropped = { ...Object.fromEntries(Object.keys(st.kernelDropped).map((k) => [k, 0])), ...Session.named(s.dropped) };
    const answer: EndAnswer = {
      op: 'end', routed: Session.named(s.routed), sent: Session.named(s.sent), dropped,
      host_kernel_drops: st.droppedTotal - st.userDropped - s.kernelDropsAtStart, barrier,
    };
    if (!barrier) log.warn({ guardian: s.guardian }, 'resident: the guardian\'s exit record did not arrive; the stream ends on a timeout');
    if (!sock.destroyed) sock.end(jsonFrame(answer));
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
