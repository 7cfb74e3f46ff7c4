import { createConnection, type Socket } from 'node:net';
import { WitnessError } from '../errors.js';
import { decodeEvent, FRAME_JSON, FrameReader, jsonFrame, residentSocketPath, type EndAnswer, type HelloAnswer } from '../daemon/resident-protocol.js';
import { kindName } from '../daemon/resident-router.js';
import { log } from '../log.js';
import { decodeBatch } from '../sensor/decode.js';
import type { SpawnTracer } from '../sensor/guardian.js';
import { LAYOUT as L } from '../sensor/layout.js';
import { loadNative } from '../sensor/native.js';
import { bootToEpochOffsetNs, type BootClock } from '../sensor/ndjson.js';
import { deniedReadFilter, expandHome } from '../sensor/sensitive.js';
import type { SensorStats } from '../sensor/sensor.js';
import type { SensorEvent, SuppressedEvent } from '../sensor/types.js';

/**
 * `witness run` through a running daemon (docs/resident.md): the daemon's
 * sensor, already loaded and attached, traces this run's agent and streams
 * its tree's raw records here; this process decodes, enriches, exports and
 * records them exactly as it would its own sensor's. Nothing is loaded,
 * attached or detached per call.
 *
 * `ResidentSensor.connect` answers null, with the reason, when there is no
 * daemon, it refuses, or it could not see what a local sensor would (another
 * budget): the caller then opens its own sensor, as without a daemon.
 */

export interface ResidentOptions {
  onEvent: (ev: SensorEvent) => void;
  onDecodeError?: (err: WitnessError) => void;
  /** the paths a local sensor would watch (the daemon is asked to watch them too); see useSensitive */
  sensitivePaths?: string[];
  budgetEvents?: number;
  budgetWindowMs?: number;
  path?: string;
  /** how long connect + hello may take before the run goes on alone */
  timeoutMs?: number;
}

export type ResidentOutcome = { sensor: ResidentSensor } | { sensor: null; reason: string };

const FRAME_HEADER = 8;

function emptyStats(): SensorStats {
  return {
    kernelEmitted: {}, kernelDropped: {}, kernelSuppressed: {}, delivered: {}, loss: {},
    pollErrors: 0, pollFatalErrno: 0, batches: 0, records: 0, bytes: 0, userDropped: 0, closed: false,
    decoded: 0, decodeErrors: 0, droppedTotal: 0, suppressedSummarized: {},
  };
}

export class ResidentSensor implements SpawnTracer {
  readonly clock: BootClock;
  readonly sensitiveSkipped: string[] = [];
  readonly daemon: HelloAnswer;
  private readonly reader = new FrameReader();
  private readonly counts = emptyStats();
  private replies: ((m: Record<string, unknown>) => void)[] = [];
  private endAnswer: EndAnswer | null = null;
  private broken: string | null = null;
  private ending = false;
  /** the stream broke before this run asked to end it (the daemon stopped or died) */
  onBroken: (why: string) => void = () => {};
  private readonly closed: Promise<void>;
  private denied: (path: string) => boolean = () => false;
  private sensitive: string[] = [];
  deniedOutside = 0;

  private constructor(private readonly sock: Socket, hello: HelloAnswer, private readonly opts: ResidentOptions, firstFrames: Buffer) {
    this.daemon = hello;
    this.clock = { bootToEpochNs: bootToEpochOffsetNs(loadNative().clockOffsets()) };
    this.useSensitive(opts.sensitivePaths ?? []);
    this.closed = new Promise((resolve) => sock.once('close', () => resolve()));
    sock.on('data', (c: Buffer) => this.onData(c));
    sock.on('error', (err) => { this.broken ??= err.message; });
    sock.once('close', () => {
      if (!this.endAnswer) this.broken ??= 'the daemon closed the stream before the end';
      if (!this.endAnswer && !this.ending) this.onBroken(this.broken ?? 'closed');
      for (const r of this.replies.splice(0)) r({ ok: false, error: { code: 'internal', message: this.broken ?? 'closed' } });
    });
    if (firstFrames.length > 0) this.onData(firstFrames);
  }

  /** Connects and says hello; null (with why) means: run with a sensor of your own. */
  static async connect(opts: ResidentOptions): Promise<ResidentOutcome> {
    const path = opts.path ?? residentSocketPath();
    const sock = createConnection(path);
    const reader = new FrameReader();
    const got = await new Promise<{ hello: Record<string, unknown>; rest: Buffer } | string>((resolve) => {
      const timer = setTimeout(() => resolve(`no answer from ${path} within ${opts.timeoutMs ?? 1000} ms`), opts.timeoutMs ?? 1000);
      const done = (v: { hello: Record<string, unknown>; rest: Buffer } | string): void => { clearTimeout(timer); sock.removeAllListeners('data'); resolve(v); };
      sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? `no daemon at ${path}` : `${path}: ${err.message}`));
      sock.once('connect', () => sock.write(jsonFrame({ op: 'hello', wire: L.WA_WIRE_VERSION, source: loadNative().sourceHash })));
      sock.once('close', () => done(`${path} closed the connection`));
      let held = Buffer.alloc(0);
      sock.on('data', (c: Buffer) => {
        held = Buffer.concat([held, c]);
        let frames;
        try { frames = reader.push(c); } catch (err) { return done((err as Error).message); }
        const f = frames[0];
        if (!f) return;
        if (f.kind !== FRAME_JSON) return done('the daemon answered hello with records');
        // hand the bytes after the first frame to the session's own reader
        const first = 4 + held.readUInt32LE(0);
        done({ hello: f.json, rest: held.subarray(first) });
      });
    });
    if (typeof got === 'string' || got.hello.ok !== true) {
      sock.destroy();
      const why = typeof got === 'string' ? got : `the daemon refused: ${String((got.hello.error as { message?: string } | undefined)?.message ?? 'no reason')}`;
      return { sensor: null, reason: why };
    }
    const hello = got.hello as unknown as HelloAnswer;
    // The daemon's kernel budget is what the tree would get: a run asking for another must have its own sensor.
    if ((opts.budgetEvents !== undefined && opts.budgetEvents !== hello.budget_events) ||
        (opts.budgetWindowMs !== undefined && opts.budgetWindowMs !== hello.budget_window_ms)) {
      sock.destroy();
      return { sensor: null, reason: `the daemon's budget (${hello.budget_events} per ${hello.budget_window_ms} ms) is not the one asked for` };
    }
    return { sensor: new ResidentSensor(sock, hello, opts, got.rest) };
  }

  /** The sensitive set this run would watch with its own sensor: sent to the daemon at `arm`, and the denied-read filter. */
  useSensitive(paths: string[]): void {
    this.sensitive = expandHome(paths);
    this.denied = deniedReadFilter(this.sensitive);
  }

  private request(obj: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      if (this.sock.destroyed) return resolve({ ok: false, error: { message: this.broken ?? 'the daemon is gone' } });
      this.replies.push(resolve);
      this.sock.write(jsonFrame(obj));
    });
  }

  private onData(chunk: Buffer): void {
    let frames;
    try { frames = this.reader.push(chunk); } catch (err) {
      this.broken ??= (err as Error).message;
      this.sock.destroy();
      return;
    }
    for (const f of frames) {
      if (f.kind !== FRAME_JSON) { this.onRecords(f.records); continue; }
      if (f.json.op === 'end') this.endAnswer = f.json as unknown as EndAnswer;
      else if (f.json.op === 'event') this.onSummary(decodeEvent<SuppressedEvent>(f.json.event));
      else this.replies.shift()?.(f.json);
    }
  }

  private onRecords(buf: Buffer): void {
    const c = this.counts;
    c.batches++;
    for (let off = 0; off + FRAME_HEADER <= buf.length;) {
      const len = buf.readUInt32LE(off);
      const kind = kindName(buf.readUInt16LE(off + FRAME_HEADER));
      c.delivered[kind] = (c.delivered[kind] ?? 0) + 1;
      c.records++;
      c.bytes += len;
      off += FRAME_HEADER + ((len + 7) & ~7);
    }
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    const r = decodeBatch(ab, (ev) => {
      // the same filter as the local sensor: a denied open outside the sensitive set is not evidence
      if (ev.kind === 'file_read_sensitive' && ev.ret < 0 && !this.denied(ev.path)) { this.deniedOutside++; return; }
      this.opts.onEvent(ev);
    }, this.opts.onDecodeError);
    c.decoded += r.events;
    c.decodeErrors += r.errors;
  }

  /** The tree's repeats its budget counted instead of writing, as the daemon summarised them. */
  private onSummary(ev: SuppressedEvent): void {
    if (ev?.kind !== 'suppressed') return;
    const c = this.counts;
    c.kernelSuppressed[ev.suppressedKind] = (c.kernelSuppressed[ev.suppressedKind] ?? 0) + ev.count;
    c.suppressedSummarized[ev.suppressedKind] = (c.suppressedSummarized[ev.suppressedKind] ?? 0) + ev.count;
    this.opts.onEvent(ev);
  }

  private async ask(obj: Record<string, unknown>, what: string): Promise<void> {
    const a = await this.request(obj);
    if (a.ok !== true) {
      const e = a.error as { code?: string; message?: string } | undefined;
      throw new WitnessError('E_KERNEL', `the daemon would not ${what}: ${e?.message ?? 'no reason'}${e?.code ? ` (${e.code})` : ''}`);
    }
  }

  /** SpawnTracer: the daemon follows this guardian (our child) and learns our sensitive paths. */
  arm(guardianPid: number): Promise<void> {
    return this.ask({ op: 'trace', guardian: guardianPid, sensitive: this.sensitive }, `follow guardian ${guardianPid}`);
  }

  /** SpawnTracer: the daemon adds the held agent to its kernel traced set before it runs. */
  async confirm(pid: number): Promise<boolean> {
    await this.ask({ op: 'root', pid }, `trace pid ${pid}`);
    return true;
  }

  dropsByProcess(): { pid: number; comm: string; count: number }[] {
    return [];
  }

  /**
   * Per kind, with the daemon as the stage upstream of this process: emitted = what the daemon
   * routed to this run, kernelDropped = what it could not queue to us (a slow reader), delivered =
   * what arrived, userDropped = what it sent that never arrived (a broken stream).
   */
  stats(): SensorStats {
    const c = this.counts;
    const e = this.endAnswer;
    const kernelEmitted = e ? { ...e.routed } : { ...c.delivered };
    const kernelDropped = e ? { ...e.dropped } : {};
    const streamDropped = Object.values(kernelDropped).reduce((a, b) => a + b, 0);
    const sent = e ? Object.values(e.sent).reduce((a, b) => a + b, 0) : c.records;
    const userDropped = Math.max(0, sent - c.records);
    const loss: Record<string, number> = { ...c.loss };
    if (e) loss.hostKernelDrops = e.host_kernel_drops;
    if (e && !e.barrier) loss.residentBarrierTimeout = 1;
    if (this.broken !== null && !e) loss.residentStreamBroken = 1;
    return { ...c, kernelEmitted, kernelDropped, loss, userDropped, droppedTotal: streamDropped + userDropped, closed: this.sock.destroyed };
  }

  /** Ends the session once the tree is done: the daemon sends what is left, then its counts. */
  async close(): Promise<SensorStats> {
    this.ending = true;
    if (!this.sock.destroyed) {
      this.sock.write(jsonFrame({ op: 'end' }));
      await this.closed;
    }
    if (this.broken !== null && !this.endAnswer) log.warn({ err: this.broken }, 'resident stream broke; records after the break are missing');
    return this.stats();
  }
}
