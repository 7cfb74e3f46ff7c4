import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { log } from '../log.js';
import type { Attributes } from '../events/envelope.js';
import type { EventName } from '../events/names.js';
import type { CheckpointReason } from './checkpoint.js';
import { nowRfc3339, sensorBootId } from './clock.js';
import { restartAttributes, type RecoveredLog } from './recovery.js';
import { appendGlobalRow, notePendingRow, rowDir, type DaemonSegmentRow } from './global.js';
import { hostAnchorAttributes } from './host-head.js';
import { loadPrivateKey } from './keys.js';
import { continuityHook } from './continuity.js';
import { LedgerLog } from './log-writer.js';
import { sealCrashed } from './seal-crashed.js';
import { loadOrCreateHostKey } from './session.js';
import { segmentTail } from './segment-tail.js';
import { ensurePrivateDir, holdFileLock, resolveStateDir } from './state.js';
import { isIoFault, LedgerOutage, takeUnrecordedOutage } from './outage.js';
import { pruneSealedSegments, type RetentionPolicy } from './retention.js';

export interface DaemonWriterOptions {
  stateDir?: string;
  signKeyPath?: string;
  signKey?: KeyObject;
  /** One epoch per daemon run; passing an existing id resumes its last segment after a crash. */
  epochId?: string;
  /** Rotate to a new segment past this many bytes (default 64 MiB)... */
  segmentMaxBytes?: number;
  /** ...or this age (default 1 h; 0 disables). */
  segmentMaxSeconds?: number;
  checkpointEveryEvents?: number;
  checkpointEverySeconds?: number;
  flushIntervalMs?: number;
  /** Seal crashed epochs and sessions of this state dir before opening (default true). */
  sealCrashed?: boolean;
  /** Set when this writer only resumes a crashed epoch to seal it: who sealed it. */
  sealedBy?: string;
  /** After a write failure (disk full, EIO), retry the disk this often (default 1000 ms; src/ledger/outage.ts). */
  retryIntervalMs?: number;
  /** Retention of sealed segments (src/ledger/retention.ts); default none. */
  retention?: RetentionPolicy;
}

/** Written into an epoch dir once its last segment is sealed and recorded: nothing left to seal there. */
export const EPOCH_DONE_FILE = 'epoch.sealed';

export const segmentEventsFile = (n: number): string => `segment-${String(n).padStart(6, '0')}.ndjson`;
export const segmentCheckpointsFile = (n: number): string => `segment-${String(n).padStart(6, '0')}.checkpoints.ndjson`;

/** Segment numbers present in an epoch dir, ascending. */
export function listSegments(dir: string): number[] {
  return fs.readdirSync(dir)
    .map((f) => /^segment-(\d{6})\.ndjson$/.exec(f)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * The daemon's continuous stream, cut into segments by size or age. Every
 * segment is a complete log (events + checkpoints) sealed with a final
 * `rotate` (or `shutdown`) checkpoint and recorded as a row in the host
 * ledger. Each new segment opens with a record naming the previous segment's
 * root, chain head and final checkpoint, so segments chain into one history.
 */
export class DaemonWriter {
  private log!: LedgerLog;
  private segment = 0;
  private openedAt = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Crashed logs this writer sealed before it opened (named in its first record). */
  sealedOnStart: string[] = [];
  /** A disk failure in progress: appends refused and counted, the disk retried, the gap recorded on resume. */
  readonly outage: LedgerOutage;
  /** A sealed segment whose host-ledger row could not be appended (the disk failed): appended on resume. */
  private unrecorded: DaemonSegmentRow | null = null;
  /** The segment `log` writes (this.segment moves first while a rotation opens the next one). */
  private logSegment = 0;

  private constructor(
    readonly dir: string,
    readonly stateDir: string,
    readonly epochId: string,
    private readonly key: KeyObject,
    private readonly opts: DaemonWriterOptions,
    private readonly unlock: () => void,
  ) {
    this.outage = new LedgerOutage(dir, opts.retryIntervalMs ?? 1000, () => this.resume());
  }

  static async create(opts: DaemonWriterOptions = {}): Promise<DaemonWriter> {
    const stateDir = resolveStateDir(opts.stateDir);
    ensurePrivateDir(stateDir);
    const key = opts.signKey ?? (opts.signKeyPath ? loadPrivateKey(opts.signKeyPath) : loadOrCreateHostKey(stateDir));
    const epochId = opts.epochId ?? `${new Date().toISOString().replace(/[:.]/g, '-')}-${crypto.randomBytes(4).toString('hex')}`;
    // A restart first seals what a killed predecessor left open, so no epoch stays unsealed.
    const dir = path.join(stateDir, 'daemon', epochId);
    const sealed = opts.sealCrashed === false ? [] : await sealCrashed(stateDir, key, `daemon/${epochId}`, dir);
    ensurePrivateDir(dir);
    const unlock = holdFileLock(path.join(dir, 'writer.lock'));
    const w = new DaemonWriter(dir, stateDir, epochId, key, opts, unlock);
    w.sealedOnStart = sealed;
    try {
      const existing = listSegments(dir);
      const last = existing.length ? existing[existing.length - 1]! : 0;
      const tail = existing.length ? segmentTail(dir, last) : null;
      if (tail?.sealedBy === 'shutdown') throw new WitnessError('E_LEDGER', 'this daemon epoch was shut down and sealed; start a new epoch', { file: dir });
      if (tail?.sealedBy === 'rotate') w.openSegment(last + 1, tail.link);
      else w.openSegment(last, last > 0 && tail?.records === 0 ? segmentTail(dir, last - 1).link : null);
    } catch (e) {
      unlock();
      throw e;
    }
    w.retain();
    const maxSec = opts.segmentMaxSeconds ?? 3600;
    if (maxSec > 0) {
      w.timer = setInterval(() => {
        if (w.outage.failing || w.closed || Date.now() - w.openedAt < maxSec * 1000 || w.log.size === 0) return;
        try { w.guard(() => w.rotate()); } catch { /* a disk failure: the outage has it */ }
      }, Math.min(maxSec * 1000, 1000)).unref();
    }
    return w;
  }

  private openSegment(n: number, prev: { root: string; chainHead: string; checkpointSha: string } | null, resuming = false): void {
    this.segment = n;
    this.openedAt = Date.now();
    this.log = new LedgerLog({
      dir: this.dir,
      eventsFile: segmentEventsFile(n),
      checkpointsFile: segmentCheckpointsFile(n),
      log: 'daemon',
      logId: `${this.epochId}/${n}`,
      key: this.key,
      onSealed: continuityHook(this.stateDir),
      onBackgroundFailure: (e) => { if (isIoFault(e) && !this.outage.failing) this.fault(e); },
      ...(this.opts.checkpointEveryEvents !== undefined && { checkpointEveryEvents: this.opts.checkpointEveryEvents }),
      ...(this.opts.checkpointEverySeconds !== undefined && { checkpointEverySeconds: this.opts.checkpointEverySeconds }),
      ...(this.opts.flushIntervalMs !== undefined && { flushIntervalMs: this.opts.flushIntervalMs }),
    });
    const rec = this.log.recovered;
    this.logSegment = n;
    if (resuming) this.outage.measured(String(n), rec?.seq ?? 0, rec?.lost.file ?? null);
    if (!rec || rec.seq === 0) {
      this.writeControl('sensor.start', {
        'witness.daemon.epoch': this.epochId,
        'witness.ledger.segment': n,
        'witness.ledger.prev_segment_root': prev?.root ?? null,
        'witness.ledger.prev_segment_chain_head': prev?.chainHead ?? null,
        'witness.ledger.prev_segment_checkpoint_sha256': prev?.checkpointSha ?? null,
        ...hostAnchorAttributes(this.stateDir),
        'witness.ledger.sealed_after_crash': this.sealedOnStart,
        'witness.sensor.boot_id': sensorBootId(),
      });
    }
    if (!resuming && (rec || this.opts.sealedBy)) this.recordRestart(n, rec);
  }

  /** An I/O failure of the current segment starts the outage (LedgerOutage.faultOf); others pass through. */
  private fault(e: unknown): unknown {
    return this.outage.faultOf(e, this.log, String(this.logSegment));
  }

  private guard<T>(work: () => T): T {
    return this.outage.guard(this.log, String(this.logSegment), work);
  }

  /**
   * One retry of the disk: the failed segment is reopened as after a crash
   * (torn tail cut off), or, when it was sealed before the failure, its row
   * appended and the next segment opened; then the `ledger.gap` record is
   * appended and sealed by a `gap` checkpoint. Throws while the disk fails.
   */
  private resume(): void {
    try {
      if (this.unrecorded) {
        appendGlobalRow(this.stateDir, this.key, this.unrecorded, notePendingRow(this.stateDir, this.unrecorded));
        this.unrecorded = null;
      }
      const n = this.segment;
      const exists = fs.existsSync(path.join(this.dir, segmentEventsFile(n)));
      const tail = exists ? segmentTail(this.dir, n) : null;
      if (tail?.sealedBy === 'rotate') {
        this.outage.measuredSealed();
        this.openSegment(n + 1, tail.link, true);
      } else {
        // not there: the failure was opening it, after the previous one was sealed (nothing in flight)
        if (!exists) this.outage.measuredSealed();
        this.openSegment(n, n > 0 ? segmentTail(this.dir, n - 1).link : null, true);
      }
      this.writeControl('ledger.gap', { ...this.outage.gapAttributes(), 'witness.daemon.epoch': this.epochId, 'witness.ledger.segment': this.segment });
      this.log.checkpoint('gap');
    } catch (e) {
      this.log.abandon();
      throw e;
    }
    this.outage.ended();
  }

  /** The chain resumes after a crash: say where, what was lost, and who resumed it. */
  private recordRestart(n: number, rec: RecoveredLog | null): void {
    // an outage the crashed writer could not record (killed by the watchdog, or closed while the disk failed)
    const gap = takeUnrecordedOutage(this.dir, { log: String(n), seq: rec?.seq ?? 0 });
    if (gap) this.writeControl('ledger.gap', { ...gap, 'witness.daemon.epoch': this.epochId, 'witness.ledger.segment': n } as Attributes);
    this.log.markRestart();
    this.writeControl('sensor.restart', {
      'witness.daemon.epoch': this.epochId,
      'witness.ledger.segment': n,
      ...(rec ? restartAttributes(rec, this.log.restartCount) : { 'witness.ledger.restart_count': this.log.restartCount, 'witness.ledger.lost_bytes': 0 }),
      'witness.ledger.last_checkpoint_index': rec?.lastCheckpoint?.index ?? null,
      'witness.ledger.last_checkpoint_sha256': rec?.lastCheckpointSha256 ?? null,
      'witness.daemon.sealed_by': this.opts.sealedBy ?? null,
      'witness.sensor.boot_id': sensorBootId(),
    });
    this.log.checkpoint('restart');
  }

  get currentSegment(): number { return this.segment; }

  /**
   * Hot path, as SessionWriter.append; rotates when the segment is full.
   * During a disk outage throws E_IO at once (the record counted in the gap).
   */
  append(eventLine: string): number {
    if (this.outage.failing) throw this.outage.refuse();
    return this.guard(() => {
      const seq = this.log.append(eventLine);
      if (this.log.bytesWritten >= (this.opts.segmentMaxBytes ?? 64 * 1024 * 1024)) this.rotate();
      return seq;
    });
  }

  appendControl(event: EventName, attributes: Attributes): number {
    if (this.outage.failing) throw this.outage.refuse();
    return this.guard(() => this.writeControl(event, attributes));
  }

  /** The writer's own records (start, restart, gap, stop): straight to the log, also while resuming. */
  private writeControl(event: EventName, attributes: Attributes): number {
    return this.log.append(JSON.stringify({ time: nowRfc3339(), event, attributes }));
  }

  /** Ignored during an outage: the caller sends fresh counters again after it. */
  updateCounters(counters: Record<string, number>, drops: Record<string, number>): void { if (!this.outage.failing) this.log.setCounters(counters, drops); }

  checkpoint(reason: CheckpointReason = 'window'): void {
    if (this.outage.failing) throw new WitnessError('E_IO', 'ledger is not writable (outage in progress); no checkpoint', { file: this.dir });
    this.guard(() => this.log.checkpoint(reason));
  }

  /** How long the disk has been failing this writer (0 while healthy). */
  failingForMs(now = Date.now()): number { return this.outage.failingForMs(now); }

  private seal(reason: 'rotate' | 'shutdown'): { root: string; chainHead: string; checkpointSha: string } {
    const checkpointSha = this.log.checkpoint(reason);
    const sealed = { root: this.log.rootHex, chainHead: this.log.chainHeadHex, checkpointSha, size: this.log.size };
    this.log.close();
    const row: DaemonSegmentRow = {
      kind: 'daemon_segment',
      epoch_id: this.epochId,
      segment: this.segment,
      dir: rowDir(this.stateDir, this.dir),
      tree_size: sealed.size,
      root_hash: sealed.root,
      chain_head: sealed.chainHead,
      final_checkpoint_sha256: checkpointSha,
      key_id: this.log.keyIdHex,
    };
    // Kept until the row is in: a disk failure from here on leaves a sealed segment the resume records.
    this.unrecorded = row;
    appendGlobalRow(this.stateDir, this.key, row, notePendingRow(this.stateDir, row));
    this.unrecorded = null;
    if (reason === 'shutdown') fs.writeFileSync(path.join(this.dir, EPOCH_DONE_FILE), `${checkpointSha}\n`, { mode: 0o600 });
    return sealed;
  }

  /** Seals the current segment and starts the next; then retention may prune old sealed segments. */
  rotate(): void {
    this.openSegment(this.segment + 1, this.seal('rotate'));
    this.retain();
  }

  /** Retention pass (after each rotation and at start); a failure is logged, never fails the append that rotated. */
  retain(): void {
    if (!this.opts.retention) return;
    try {
      pruneSealedSegments(this.stateDir, this.key, this.opts.retention);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'ledger retention failed; retrying at the next rotation');
    }
  }

  /**
   * Seals the epoch. During an outage, one last retry first; if the disk
   * still fails the epoch stays unsealed (the lock released, so the next
   * start seals it and records the lost tail) and E_IO is thrown.
   */
  async close(counters: Record<string, number> = {}, drops: Record<string, number> = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    try {
      if (this.outage.failing) this.outage.retry();
      if (this.outage.failing) throw this.outage.giveUp();
      this.guard(() => {
        this.writeControl('sensor.stop', { 'witness.daemon.epoch': this.epochId, 'witness.ledger.segment': this.segment });
        this.log.setCounters(counters, drops);
        this.seal('shutdown');
      });
    } finally {
      this.outage.stop();
      this.unlock();
    }
  }
}
