import type { Socket } from 'node:net';
import type { RunSession } from '../cli/run-session.js';
import type { Envelope } from '../events/envelope.js';
import type { OutputSink } from '../pipeline/run-path.js';
import { decodeBatch } from '../sensor/decode.js';
import type { BootClock } from '../sensor/ndjson.js';
import { deniedReadFilter } from '../sensor/sensitive.js';
import type { SensorStats } from '../sensor/sensor.js';
import type { SuppressedEvent } from '../sensor/types.js';
import type { WitnessError } from '../errors.js';
import { outputFrame } from './resident-protocol.js';
import { kindName, type RouteTarget, type RoutedBatch } from './resident-router.js';

/**
 * One `witness run` recorded by the daemon (docs/resident.md): the router's
 * records of its tree, decoded here and fed to the same RunSession a
 * standalone run uses, whose output goes back to the client as OUTPUT frames.
 * Counted with the daemon as the observer: emitted = what the router took
 * for this tree, delivered = what was decoded from it (the same thing: no
 * queue sits between them), drops = ring drops, which are host-wide and
 * named as such (`witness.loss.host_kernel_drops`), never guessed.
 */

/** Output lines batched per event-loop turn into one frame; at most this much per frame. */
const FRAME_BYTES = 256 << 10;

/** The run's output, to its client. A client that stops reading costs lines (bounded, counted), never the daemon. */
export class SocketLineSink implements OutputSink {
  readonly name = 'resident';
  private pending: string[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private written = 0;
  private dropped = 0;

  constructor(private readonly sock: Socket, private readonly counters: { dropped: number }, private readonly maxQueuedBytes = 8 << 20) {}

  write(_env: Envelope, line: string): void {
    if (this.sock.destroyed || this.sock.writableLength + this.pendingBytes + line.length + 1 > this.maxQueuedBytes) {
      this.dropped++;
      this.counters.dropped++;
      return;
    }
    this.pending.push(line);
    this.pendingBytes += line.length + 1;
    if (this.pendingBytes >= FRAME_BYTES) this.flushNow();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushNow());
    }
  }

  private flushNow(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const n = this.pending.length;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.sock.destroyed) { this.dropped += n; this.counters.dropped += n; return; }
    this.sock.write(outputFrame(text));
    this.written += n;
  }

  stats(): { written: number; dropped: number; queued: number } {
    return { written: this.written, dropped: this.dropped, queued: this.pending.length };
  }

  /** Hands what is left to the socket: the session's end answer follows it, in order. */
  async close(): Promise<void> {
    this.flushNow();
  }
}

function emptyStats(): SensorStats {
  return {
    kernelEmitted: {}, kernelDropped: {}, kernelSuppressed: {}, delivered: {}, loss: {},
    pollErrors: 0, pollFatalErrno: 0, batches: 0, records: 0, bytes: 0, userDropped: 0, closed: false,
    decoded: 0, decodeErrors: 0, droppedTotal: 0, suppressedSummarized: {},
  };
}

export class ResidentRun implements RouteTarget {
  guardian = 0;
  root = 0;
  readonly clock: BootClock;
  /** ring drops (host-wide) when the root was added, and when the session ended */
  kernelDropsAtStart = 0;
  private readonly counts = emptyStats();
  private readonly denied: (path: string) => boolean;
  private barrierSeen = false;
  private onBarrier: (() => void) | null = null;
  private final: SensorStats | null = null;
  deniedOutside = 0;

  /**
   * `daemonKinds`: every record kind the daemon's sensor counts, so a session's drop table
   * reads as a standalone one (zero included).
   */
  constructor(readonly session: RunSession, clock: BootClock, sensitive: string[], private readonly counters: { routed: number },
    private readonly daemonKinds: () => string[],
    private readonly onDecodeError: (err: WitnessError) => void) {
    this.clock = clock;
    this.denied = deniedReadFilter(sensitive);
  }

  deliver(b: RoutedBatch): void {
    const c = this.counts;
    c.batches++;
    for (const [type, n] of b.byType) {
      const k = kindName(type);
      c.kernelEmitted[k] = (c.kernelEmitted[k] ?? 0) + n;
      c.delivered[k] = (c.delivered[k] ?? 0) + n;
      c.records += n;
      this.counters.routed += n;
    }
    for (const [type, n] of b.dropped ?? []) {
      const k = kindName(type);
      c.kernelEmitted[k] = (c.kernelEmitted[k] ?? 0) + n;
      c.userDropped += n;
      c.droppedTotal += n;
    }
    c.bytes += b.bytes.length;
    // a copy: the batch is the daemon's, and decoded events keep views into their buffer
    const own = new Uint8Array(b.bytes.length);
    own.set(b.bytes);
    const r = decodeBatch(own.buffer, (ev) => {
      // the same filter as the local sensor: a denied open outside the sensitive set is not evidence
      if (ev.kind === 'file_read_sensitive' && ev.ret < 0 && !this.denied(ev.path)) { this.deniedOutside++; return; }
      this.session.onSensorEvent(ev);
    }, this.onDecodeError);
    c.decoded += r.events;
    c.decodeErrors += r.errors;
  }

  /** A tree process's repeats its budget counted instead of writing, as the daemon summarised them. */
  deliverEvent(ev: SuppressedEvent): void {
    const c = this.counts;
    c.kernelSuppressed[ev.suppressedKind] = (c.kernelSuppressed[ev.suppressedKind] ?? 0) + ev.count;
    c.suppressedSummarized[ev.suppressedKind] = (c.suppressedSummarized[ev.suppressedKind] ?? 0) + ev.count;
    this.session.onSensorEvent(ev);
  }

  onGuardianExit(): void {
    this.barrierSeen = true;
    this.onBarrier?.();
  }

  /** true once the guardian's exit record passed: every record of the tree is ahead of it; false on a timeout */
  barrier(timeoutMs: number): Promise<boolean> {
    if (this.barrierSeen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.onBarrier = () => { clearTimeout(t); resolve(true); };
    });
  }

  stats(): SensorStats {
    if (this.final) return this.final;
    const c = this.counts;
    return { ...c, kernelDropped: Object.fromEntries(this.daemonKinds().map((k) => [k, 0])), loss: { ...c.loss } };
  }

  dropsByProcess(): { pid: number; comm: string; count: number }[] {
    return [];
  }

  /** The stream is done: what the final heartbeat and session.json carry. `loss` names what is known to be missing. */
  end(loss: Record<string, number>): void {
    const s = this.stats();
    this.final = { ...s, loss: { ...s.loss, ...loss }, closed: true };
  }

  /** SessionSource: the daemon's sensor stays; this run's stream is what closes. */
  async close(): Promise<SensorStats> {
    if (!this.final) this.end({});
    return this.final!;
  }
}
