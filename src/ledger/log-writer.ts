import fs from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { WitnessError } from '../errors.js';
import { log } from '../log.js';
import { signCheckpoint, type CheckpointPredicate, type CheckpointReason } from './checkpoint.js';
import { nowRfc3339, sensorBootId } from './clock.js';
import { EventHasher, sha256 } from './hash.js';
import { LedgerHashState } from './log-hash.js';
import { keyIdOf, rawPublicKey } from './keys.js';
import { consistencyProofWith } from './merkle.js';
import { formatRecordV1 } from './record.js';
import { recoverLog, type RecoveredLog } from './recovery.js';
import { SealQueue } from './seal-queue.js';
import { fsyncDir, utf8Write, writeFully } from './tail.js';

export interface LedgerLogOptions {
  dir: string;
  eventsFile: string;
  checkpointsFile: string;
  log: CheckpointPredicate['log'];
  logId: string;
  key: KeyObject;
  /** Seal a checkpoint after this many records (default 10 000, max 1 000 000). */
  checkpointEveryEvents?: number;
  /**
   * Count checkpoints at most this often (ms): a flood seals this long's records at once instead
   * of fsyncing and signing ~50 times a second. Default 250 with the default count, 0 (exact
   * count) when checkpointEveryEvents is given; a segment never passes 1 000 000 records.
   */
  checkpointMinIntervalMs?: number;
  /** ...and at least this often while records arrive (default 5 s; 0 disables the timer). */
  checkpointEverySeconds?: number;
  /** Hand buffered records to the kernel once this many bytes are pending (default 256 KiB). */
  flushBytes?: number;
  /** ...or after this long (default 100 ms; 0 disables the timer). */
  flushIntervalMs?: number;
  /** The host ledger is appended by sessions that may use different keys; every checkpoint names its own key. */
  allowSignerChange?: boolean;
  /** Record form (src/ledger/record.ts); default 2. 1 writes the old form, for compatibility tests only. */
  recordFormat?: 1 | 2;
  /** Called with each sealed checkpoint line (durable by then): the state dir's continuity log takes it as a leaf. */
  onSealed?: (checkpointLine: Buffer) => void;
  /** Called when a timer's flush or checkpoint fails (the writer's outage starts then, not at the next append). */
  onBackgroundFailure?: (err: Error) => void;
  /** Hash on the addon's background thread beside the event loop (default true; false: before append returns). */
  backgroundHash?: boolean;
  /**
   * The count and time checkpoints' fsyncs on libuv's threadpool, in order, the event loop not
   * waiting (src/ledger/seal-queue.ts); explicit checkpoints and close stay synchronous. Default false.
   */
  asyncSeal?: boolean;
}

/** What a checkpoint carries beyond the log's state, and who hears of it once it is signed. */
export interface SealExtra {
  sessionSha256?: string;
  /** called with the line's SHA-256 once signed, before its fsyncs start (work that only needs its digest starts beside them) */
  onSigned?: (lineSha256: string, line: Buffer) => void;
}

const MAX_SEGMENT = 1_000_000;
/** Past the checkpoint count, the interval is checked every this many records (a clock read per record costs ~1 %). */
const CLOCK_EVERY = 64;

/** `{"seq":` + N + `,"event":` (recordHead's bytes) into buf at `at`; returns where the event bytes start. */
const SEQ_OPEN = Buffer.from('{"seq":', 'latin1');
const EVENT_OPEN = Buffer.from(',"event":', 'latin1');
/** The longest head: 7 + 16 digits (seq < 2^53) + 9. */
const HEAD_MAX = SEQ_OPEN.length + 16 + EVENT_OPEN.length;
function writeHead(buf: Buffer, at: number, seq: number): number {
  for (let i = 0; i < SEQ_OPEN.length; i++) buf[at++] = SEQ_OPEN[i]!;
  let digits = 1;
  for (let x = seq; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = digits - 1, x = seq; i >= 0; i--, x = Math.floor(x / 10)) buf[at + i] = 48 + (x % 10);
  at += digits;
  for (let i = 0; i < EVENT_OPEN.length; i++) buf[at++] = EVENT_OPEN[i]!;
  return at;
}

/** The pending buffer's first size; it grows to twice flushBytes as records come. */
const INITIAL_PENDING = 64 * 1024;

/** Records hashed per native call at most (they are hashed at the latest when flushed). */
const RANGE_BATCH = 8192;

/**
 * One append-only, hash-chained, Merkle-sealed log: `<events>.ndjson` plus
 * `<checkpoints>.ndjson`. Sessions, the global ledger and daemon segments
 * are all this structure.
 *
 * Durability (fsync policy): append() only buffers in memory. Buffers are
 * written (write(2), no fsync) every `flushBytes` or `flushIntervalMs`, so a
 * kill -9 loses at most that much in memory and can tear at most the last
 * line on disk. At every checkpoint the events file is fsync'd *before* the
 * checkpoint is written and fsync'd, so a checkpoint never covers bytes that
 * are not durable. Power loss can lose unsealed records (never sealed ones);
 * recovery re-hashes them, keeps the intact prefix and records the loss.
 */
export class LedgerLog {
  readonly eventsPath: string;
  readonly checkpointsPath: string;
  readonly recovered: RecoveredLog | null;
  private readonly hasher = new EventHasher();
  private readonly keyId: string;
  private readonly publicKeyB64: string;
  private eventsFd: number;
  private checkpointsFd: number;
  /** makes signed checkpoint lines durable, events first (synchronously, or on the threadpool) */
  private readonly sealer: SealQueue;
  private seq: number;
  /** Chain head, Merkle frontier and unsealed leaves, in binary; advanced a batch at a time. */
  private readonly hashes: LedgerHashState;
  /** Records not yet handed to the kernel, UTF-8 encoded straight into one reused buffer. */
  private pending: Buffer;
  private pendingLen = 0;
  /**
   * What the pending buffer grows to (twice flushBytes). It starts small: a session of a few
   * records (a resident `witness run -- /bin/true`) never touches more, and the daemon that opens
   * one per call allocated 2 MiB of write buffer per session up front, whose external memory
   * drove a major GC every few calls (~40 % of the daemon's CPU per call in `perf`).
   */
  private readonly capacity: number;
  /**
   * With background hashing, two buffers take turns: a flushed one may still
   * be read by its hash job while records fill the other. The tickets are the
   * last jobs reading each (0: none); a buffer is reused or dropped only after
   * its job is done.
   */
  private pendingTicket = 0;
  private spare: Buffer | null = null;
  private spareTicket = 0;
  /** [start, end) of the event bytes of pending records not hashed yet (pairs). */
  private readonly ranges = new Uint32Array(2 * RANGE_BATCH);
  private rangeCount = 0;
  private fileBytes: number;
  private checkpointIndex: number;
  private prevCheckpointSha: string | null;
  /** The last checkpoint line this writer signed (what `ledger.head` mirrors for the host ledger). */
  lastCheckpointLine: Buffer | null = null;
  private restarts: number;
  private counters: Record<string, number> = {};
  private drops: Record<string, number> = {};
  private readonly everyEvents: number;
  private readonly minIntervalMs: number;
  private lastSealMs = 0;
  private readonly flushBytes: number;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** A failure in a background flush/checkpoint; surfaced by the next append. */
  private failure: Error | null = null;

  constructor(private readonly opts: LedgerLogOptions) {
    this.eventsPath = path.join(opts.dir, opts.eventsFile);
    this.checkpointsPath = path.join(opts.dir, opts.checkpointsFile);
    this.everyEvents = Math.min(opts.checkpointEveryEvents ?? 10_000, MAX_SEGMENT);
    if (!(this.everyEvents >= 1)) throw new WitnessError('E_CONFIG', 'must be >= 1', { field: 'checkpointEveryEvents' });
    this.minIntervalMs = opts.checkpointMinIntervalMs ?? (opts.checkpointEveryEvents === undefined ? 250 : 0);
    this.flushBytes = opts.flushBytes ?? 256 * 1024;
    this.capacity = Math.max(this.flushBytes * 2, 64 * 1024);
    this.pending = Buffer.allocUnsafe(Math.min(this.capacity, INITIAL_PENDING));
    this.keyId = keyIdOf(opts.key);
    this.publicKeyB64 = rawPublicKey(opts.key).toString('base64');

    const existed = fs.existsSync(this.eventsPath) && fs.statSync(this.eventsPath).size > 0
      || fs.existsSync(this.checkpointsPath) && fs.statSync(this.checkpointsPath).size > 0;
    const rec = recoverLog(this.eventsPath, this.checkpointsPath);
    this.recovered = existed ? rec : null;
    if (rec.lastCheckpoint && !opts.allowSignerChange && rec.lastCheckpoint.public_key !== this.publicKeyB64) {
      throw new WitnessError('E_LEDGER', 'was sealed with a different signing key; refusing to mix signers in one log', { file: this.checkpointsPath, field: 'public_key' });
    }
    this.seq = rec.seq;
    this.hashes = new LedgerHashState({
      size: rec.frontier.size, frontier: rec.frontier.frontier, chainHeadHex: rec.chainHeadHex,
      sealedSize: rec.sealedFrontier.size, sealedFrontier: rec.sealedFrontier.frontier, unsealedLeaves: rec.unsealedLeaves,
    }, undefined, { background: opts.backgroundHash !== false });
    this.fileBytes = rec.eventsBytes;
    this.checkpointIndex = rec.lastCheckpoint ? rec.lastCheckpoint.index + 1 : 0;
    this.prevCheckpointSha = rec.lastCheckpointSha256;
    this.restarts = rec.lastCheckpoint?.restart_count ?? 0;
    if (rec.lastCheckpoint) { this.counters = { ...rec.lastCheckpoint.counters }; this.drops = { ...rec.lastCheckpoint.drops }; }

    // The directory entries need a sync only when this open creates them: an existing file's
    // entry was synced by its creator (this same rule) or, had it crashed first, by any journal
    // commit since. The host ledger is reopened for every session's row: one fsync fewer each.
    const creates = !fs.existsSync(this.eventsPath) || !fs.existsSync(this.checkpointsPath);
    this.eventsFd = fs.openSync(this.eventsPath, 'a', 0o600);
    this.checkpointsFd = fs.openSync(this.checkpointsPath, 'a', 0o600);
    if (creates) fsyncDir(opts.dir);
    this.sealer = new SealQueue(this.eventsFd, this.checkpointsFd, opts.onSealed, (e) => this.background(() => { throw e; }));

    const flushMs = opts.flushIntervalMs ?? 100;
    if (flushMs > 0) {
      this.timers.push(setInterval(() => this.background(() => {
        this.flush();
        if (this.countDue()) this.seal('count', {}, true); // a flood that stopped inside the interval is sealed now
      }), flushMs).unref());
    }
    const cpSec = opts.checkpointEverySeconds ?? 5;
    if (cpSec > 0) {
      this.timers.push(setInterval(() => this.background(() => { if (this.unsealedCount > 0) this.seal('time', {}, true); }), cpSec * 1000).unref());
    }
  }

  /** Timer work must never throw into the event loop; the error is kept and rethrown by the next append. */
  private background(work: () => void): void {
    if (this.closed || this.failure) return;
    try {
      work();
    } catch (e) {
      this.failure = e as Error;
      log.error({ err: e, file: this.eventsPath }, 'ledger background flush/checkpoint failed');
      this.opts.onBackgroundFailure?.(e as Error);
    }
  }

  get size(): number { return this.seq; }
  get chainHeadHex(): string { this.hashPending(); return this.hashes.chainHeadHex; }
  get restartCount(): number { return this.restarts; }
  get rootHex(): string { this.hashPending(); return this.hashes.rootHex(); }
  get keyIdHex(): string { return this.keyId; }
  get signingKey(): KeyObject { return this.opts.key; }
  get publicKeyBase64(): string { return this.publicKeyB64; }
  /** Records appended since the last checkpoint (including intact ones recovered after a crash). */
  get unsealedCount(): number { return this.seq - this.hashes.sealed.size; }
  get bytesWritten(): number { return this.fileBytes + this.pendingLen; }

  markRestart(): void { this.restarts++; }

  /** Latest per-stage counters from the caller; carried in every checkpoint. */
  setCounters(counters: Record<string, number>, drops: Record<string, number>): void {
    this.counters = { ...counters };
    this.drops = { ...drops };
  }

  /**
   * Hot path: buffer one event line (exact bytes, no newline); its hashes are
   * computed from the buffered bytes with the rest of the batch (hashPending),
   * at the latest when the batch is handed to the kernel. Returns the record's
   * seq. No signing, no fsync, no re-serialisation.
   */
  append(line: string): number {
    if (this.closed) throw new WitnessError('E_LEDGER', 'append after close', { file: this.eventsPath });
    if (this.failure) throw new WitnessError('E_IO', `ledger write failed earlier: ${this.failure.message}`, { file: this.eventsPath, cause: this.failure });
    if (line.length === 0 || line.indexOf('\n') !== -1) {
      throw new WitnessError('E_LEDGER', 'event line must be non-empty and contain no newline', { file: this.eventsPath, field: 'event' });
    }
    const seq = this.seq;
    const v1 = this.opts.recordFormat === 1;
    // v2: the record is {"seq":N,"event": + line + }\n (record.ts), laid out piece by piece, never concatenated
    const head = v1 ? this.v1Record(seq, line) : null;
    this.seq++;
    // A JS string of n UTF-16 units encodes to at most 3n UTF-8 bytes.
    const most = head !== null ? head.length * 3 : HEAD_MAX + line.length * 3 + 2;
    if (this.pendingLen + most > this.pending.length && this.pending.length < this.capacity && this.pendingLen + most <= this.capacity) {
      this.grow(Math.min(this.capacity, Math.max(2 * this.pending.length, this.pendingLen + most)));
    }
    if (this.pendingLen + most > this.pending.length) {
      this.flush();
      if (most > this.pending.length) {
        this.hashes.waitFor(this.pendingTicket); // dropped: no job may read it any more
        this.pending = Buffer.allocUnsafe(most);
        this.pendingTicket = 0;
      }
    }
    const p = this.pending;
    if (head !== null) {
      this.pendingLen += p.write(head, this.pendingLen, 'utf8');
    } else {
      const start = writeHead(p, this.pendingLen, seq);
      let at = start + utf8Write(p, line, start);
      const r = 2 * this.rangeCount++;
      this.ranges[r] = start;
      this.ranges[r + 1] = at;
      p[at++] = 0x7d; // }
      p[at++] = 0x0a;
      this.pendingLen = at;
      if (this.rangeCount === RANGE_BATCH) this.hashPending();
    }
    if (this.pendingLen >= this.flushBytes) this.flush();
    // the clock is read once per CLOCK_EVERY records past the count, not per record
    if (this.unsealedCount >= this.everyEvents && (this.minIntervalMs === 0 || seq % CLOCK_EVERY === 0) && this.countDue()) this.seal('count', {}, true);
    return seq;
  }

  /** A bigger pending buffer holding what is pending (a flood's first flushes): unhashed ranges are offsets, so they carry over. */
  private grow(size: number): void {
    const bigger = Buffer.allocUnsafe(size);
    this.pending.copy(bigger, 0, 0, this.pendingLen);
    this.hashes.waitFor(this.pendingTicket); // a hash job may still read the old one: it is dropped only after
    this.pending = bigger;
    this.pendingTicket = 0;
  }

  /** A v1 record carries its hashes, so they are computed now, one record at a time (compatibility tests only). */
  private v1Record(seq: number, line: string): string {
    this.hashPending();
    const prev = this.hashes.chainHeadHex;
    const leafHex = this.hasher.leafHexOfString(line);
    const linkHex = this.hasher.chainHex(prev, leafHex);
    this.hashes.appendLeafHex(leafHex, linkHex);
    return formatRecordV1(seq, prev, leafHex, linkHex, line);
  }

  /** The count is reached and the last checkpoint is at least minIntervalMs old (or the segment is at its cap). */
  private countDue(): boolean {
    const n = this.unsealedCount;
    if (n < this.everyEvents) return false;
    return this.minIntervalMs === 0 || n >= MAX_SEGMENT || Date.now() - this.lastSealMs >= this.minIntervalMs;
  }

  /** Hashes the buffered records not hashed yet (their exact bytes, where they lie in the pending buffer). */
  private hashPending(): void {
    if (this.rangeCount === 0) return;
    const n = this.rangeCount;
    this.rangeCount = 0;
    this.hashes.append(this.pending, this.ranges, n);
    this.pendingTicket = this.hashes.lastTicket;
  }

  /** Writes buffered records to the kernel (no fsync). */
  flush(): void {
    if (this.pendingLen === 0 || this.closed) return;
    this.hashPending();
    const n = this.pendingLen;
    this.pendingLen = 0;
    this.sealer.eventsWritten();
    writeFully(this.eventsFd, this.pending.subarray(0, n));
    this.fileBytes += n;
    if (this.pendingTicket !== 0) {
      // its hash job may still be reading it: fill the other buffer meanwhile (once that one's job is done)
      this.hashes.waitFor(this.spareTicket);
      const next = this.spare ?? Buffer.allocUnsafe(this.pending.length);
      this.spare = this.pending;
      this.spareTicket = this.pendingTicket;
      this.pending = next;
      this.pendingTicket = 0;
    }
  }

  /** Seals everything appended so far with a signed checkpoint, durable when it returns. Returns the checkpoint line's SHA-256. */
  checkpoint(reason: CheckpointReason, extra: SealExtra = {}): string {
    return this.seal(reason, extra, false);
  }

  /** Checkpoints queued for their fsyncs (asyncSeal), not durable yet. */
  get sealsQueued(): number { return this.sealer.queued; }

  /** A checkpoint; `later` (the flood's count and time seals) lets it become durable on the threadpool when asyncSeal is on. */
  private seal(reason: CheckpointReason, extra: SealExtra, later: boolean): string {
    if (this.closed) throw new WitnessError('E_LEDGER', 'checkpoint after close', { file: this.checkpointsPath });
    this.flush(); // every record it covers is written (write(2) returned) before its events fsync starts
    this.hashPending();
    const h = this.hashes;
    const proof = consistencyProofWith(h.subtreeHasher(), h.sealed.size, h.size);
    const predicate: CheckpointPredicate = {
      log: this.opts.log,
      log_id: this.opts.logId,
      index: this.checkpointIndex,
      reason,
      tree_size: h.size,
      root_hash: h.rootHex(),
      chain_head: h.chainHeadHex,
      frontier: h.frontierHex(),
      events_file: this.opts.eventsFile,
      events_bytes: this.fileBytes,
      prev_checkpoint_sha256: this.prevCheckpointSha,
      prev_tree_size: h.sealed.size,
      consistency_proof: proof.map((p) => Buffer.from(p).toString('hex')),
      counters: { ...this.counters, 'ledger.records': h.size },
      drops: { ...this.drops },
      sensor_boot_id: sensorBootId(),
      restart_count: this.restarts,
      time: nowRfc3339(),
      public_key: this.publicKeyB64,
    };
    if (extra.sessionSha256) predicate.session_sha256 = extra.sessionSha256;
    const line = Buffer.from(signCheckpoint(predicate, this.opts.key, this.keyId), 'utf8');
    const lineSha = sha256(line).toString('hex');
    extra.onSigned?.(lineSha, line);
    if (later && this.opts.asyncSeal === true) this.sealer.sealLater(line);
    else this.sealer.sealNow(line); // after the queued ones, events fsync'd first
    this.prevCheckpointSha = lineSha;
    this.lastCheckpointLine = line;
    this.checkpointIndex++;
    h.seal();
    this.lastSealMs = Date.now();
    return this.prevCheckpointSha;
  }

  /**
   * After a write failure: stops timers and closes the files without
   * flushing, fsyncing or sealing (the disk is failing). What reached the
   * disk is recovered by the next writer on these files (src/ledger/outage.ts).
   */
  abandon(): void {
    if (this.closed) return;
    this.hashes.settle(); // no job may outlive the buffers it reads
    this.sealer.close(); // queued lines are left as a crash leaves them: recovery re-hashes what reached the disk
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.pendingLen = 0;
    for (const fd of [this.eventsFd, this.checkpointsFd]) { try { fs.closeSync(fd); } catch { /* already failing */ } }
    this.closed = true;
  }

  /** Stops timers and closes the files. Call checkpoint('shutdown') first to seal the tail. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.hashes.settle(); // no job may outlive the buffers it reads
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.sealer.drain(); // queued checkpoints durable, in order, before the files close
    this.sealer.syncEvents(); // unless nothing was written since (a close right after the final checkpoint)
    this.sealer.close();
    fs.closeSync(this.eventsFd);
    fs.closeSync(this.checkpointsFd);
    this.closed = true;
  }
}
