import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
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

  private constructor(
    readonly dir: string,
    readonly stateDir: string,
    readonly epochId: string,
    private readonly key: KeyObject,
    private readonly opts: DaemonWriterOptions,
    private readonly unlock: () => void,
  ) {}

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
    const maxSec = opts.segmentMaxSeconds ?? 3600;
    if (maxSec > 0) w.timer = setInterval(() => { if (Date.now() - w.openedAt >= maxSec * 1000 && w.log.size > 0) w.rotate(); }, Math.min(maxSec * 1000, 1000)).unref();
    return w;
  }

  private openSegment(n: number, prev: { root: string; chainHead: string; checkpointSha: string } | null): void {
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
      ...(this.opts.checkpointEveryEvents !== undefined && { checkpointEveryEvents: this.opts.checkpointEveryEvents }),
      ...(this.opts.checkpointEverySeconds !== undefined && { checkpointEverySeconds: this.opts.checkpointEverySeconds }),
      ...(this.opts.flushIntervalMs !== undefined && { flushIntervalMs: this.opts.flushIntervalMs }),
    });
    const rec = this.log.recovered;
    if (!rec || rec.seq === 0) {
      this.appendControl('sensor.start', {
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
    if (rec || this.opts.sealedBy) this.recordRestart(n, rec);
  }

  /** The chain resumes after a crash: say where, what was lost, and who resumed it. */
  private recordRestart(n: number, rec: RecoveredLog | null): void {
    this.log.markRestart();
    this.appendControl('sensor.restart', {
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

  /** Hot path, as SessionWriter.append; rotates when the segment is full. */
  append(eventLine: string): number {
    const seq = this.log.append(eventLine);
    if (this.log.bytesWritten >= (this.opts.segmentMaxBytes ?? 64 * 1024 * 1024)) this.rotate();
    return seq;
  }

  appendControl(event: EventName, attributes: Attributes): number {
    return this.log.append(JSON.stringify({ time: nowRfc3339(), event, attributes }));
  }

  updateCounters(counters: Record<string, number>, drops: Record<string, number>): void { this.log.setCounters(counters, drops); }

  checkpoint(reason: CheckpointReason = 'window'): void { this.log.checkpoint(reason); }

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
    appendGlobalRow(this.stateDir, this.key, row, notePendingRow(this.stateDir, row));
    if (reason === 'shutdown') fs.writeFileSync(path.join(this.dir, EPOCH_DONE_FILE), `${checkpointSha}\n`, { mode: 0o600 });
    return sealed;
  }

  /** Seals the current segment and starts the next. */
  rotate(): void {
    this.openSegment(this.segment + 1, this.seal('rotate'));
  }

  async close(counters: Record<string, number> = {}, drops: Record<string, number> = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.appendControl('sensor.stop', { 'witness.daemon.epoch': this.epochId, 'witness.ledger.segment': this.segment });
    this.log.setCounters(counters, drops);
    this.seal('shutdown');
    this.unlock();
  }
}
