import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { log } from '../log.js';
import { nowRfc3339 } from './clock.js';

/**
 * A ledger write outage (disk full, EIO on the state dir): what a writer
 * records as one `ledger.gap` record once the disk takes writes again.
 *
 * While it lasts the writer refuses appends (each refused record is counted,
 * and the caller counts it too: the daemon's ledger sink as `dropped`, and
 * its failing time stops the watchdog pets), and retries every
 * `retryIntervalMs`. A retry reopens the log the way a restart does (the
 * torn tail cut off into `.lost-<seq>`) and appends the gap record, sealed
 * at once by a `gap` checkpoint. `records` is everything handed to the writer
 * that is not in the log: records refused during the outage plus records
 * accepted in memory but never made durable (found missing by the reopen).
 */
export interface GapRecord {
  from: string;
  to: string;
  cause: string;
  records: number;
}

/** Errors that mean the disk failed (retry later), not a bug or a refused input. */
export function isIoFault(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (e instanceof WitnessError) return e.code === 'E_IO' || (e.cause !== undefined && isIoFault(e.cause));
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

/**
 * Where an outage in progress is kept off the failing disk, so a writer
 * killed during it (systemd's watchdog) or closed while the disk still fails
 * does not take the count with it: `$WITNESS_RUNTIME_DIR`, else systemd's
 * `$RUNTIME_DIRECTORY` (a tmpfs; the unit preserves it across restarts).
 * Unset: the journal is the only record until the writer resumes.
 */
function outageFile(logName: string): string | null {
  const dir = (process.env.WITNESS_RUNTIME_DIR ?? process.env.RUNTIME_DIRECTORY ?? '').split(':')[0];
  if (!dir) return null;
  return path.join(dir, `ledger-outage-${crypto.createHash('sha256').update(path.resolve(logName)).digest('hex').slice(0, 16)}.json`);
}

/**
 * The outage a previous writer of `logName` could not record (killed or
 * closed while its disk failed), as the attributes of the `ledger.gap`
 * record its successor appends before its restart record; null when none.
 * Its `to` is now: the outage lasted at least until this restart. `resumed`
 * is the log the successor reopened and how many records it found: when it
 * is the one that failed, the records lost in flight are counted too.
 */
export function takeUnrecordedOutage(logName: string, resumed: { log: string; seq: number }): Record<string, unknown> | null {
  const file = outageFile(logName);
  if (!file) return null;
  let kept: { attributes: Record<string, unknown>; failedLog: string; sizeAtFailure: number; lostInFlight: number | null };
  try { kept = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof kept; } catch { return null; }
  fs.rmSync(file, { force: true });
  const a = { ...kept.attributes };
  if (kept.lostInFlight === null && resumed.log === kept.failedLog) {
    const lost = Math.max(0, kept.sizeAtFailure - resumed.seq);
    a['witness.ledger.gap.lost_in_flight'] = lost;
    a['witness.ledger.gap.records'] = (a['witness.ledger.gap.refused'] as number) + lost;
  }
  return { ...a, 'witness.ledger.gap.to': nowRfc3339(), 'witness.ledger.gap.ended_by': 'restart' };
}

interface Failing {
  sinceMs: number;
  from: string;
  cause: string;
  refused: number;
  /** Records accepted in memory but not in the log; null until the first reopen measured it. */
  lostInFlight: number | null;
  /** The log that failed and its record count then: its reopen compares that with what survived. */
  failedLog: string;
  sizeAtFailure: number;
  attempts: number;
  lostFiles: string[];
}

export class LedgerOutage {
  private state: Failing | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Outages this writer recovered from (reported by stats). */
  gapsRecorded = 0;

  /**
   * @param name the log, for messages
   * @param retryIntervalMs how often to try the disk again (ledger.retryInterval)
   * @param resume reopens the log and records the gap; throws while the disk still fails
   */
  constructor(private readonly name: string, private readonly retryIntervalMs: number, private readonly resume: () => void) {}

  get failing(): boolean { return this.state !== null; }

  /** How long writes have been failing (0 while healthy). */
  failingForMs(now = Date.now()): number { return this.state ? now - this.state.sinceMs : 0; }

  /**
   * The log failed with `err`: start (or continue) the outage and return the
   * error for the caller. `failedLog` names the log that failed (e.g. its
   * segment) and `sizeAtFailure` is its record count, counting records
   * accepted in memory.
   */
  fail(err: unknown, failedLog: string, sizeAtFailure: number): WitnessError {
    const cause = errText(err);
    if (!this.state) {
      this.state = { sinceMs: Date.now(), from: nowRfc3339(), cause, refused: 0, lostInFlight: null, failedLog, sizeAtFailure, attempts: 0, lostFiles: [] };
      log.error({ log: this.name, err: cause, retryIntervalMs: this.retryIntervalMs }, 'ledger write failed; refusing appends (counted) and retrying; the gap will be recorded');
      this.timer = setInterval(() => this.retry(), this.retryIntervalMs);
      this.timer.unref();
      this.persist();
    }
    return new WitnessError('E_IO', `ledger is not writable since ${this.state.from} (${this.state.cause}); record counted in the gap`, { file: this.name, cause: err });
  }

  /**
   * An I/O failure (disk full, EIO) of `failing`: abandon that log as it is on disk and start the
   * outage (refuse appends, retry every retryIntervalMs). Other errors pass through unchanged.
   */
  faultOf(e: unknown, failing: { readonly size: number; abandon(): void }, failedLog: string): unknown {
    if (!isIoFault(e) || this.failing) return e;
    const size = failing.size;
    failing.abandon();
    return this.fail(e, failedLog, size);
  }

  /** One write to `failing`; an I/O failure of it becomes the outage, thrown as its typed error. */
  guard<T>(failing: { readonly size: number; abandon(): void }, failedLog: string, work: () => T): T {
    try {
      return work();
    } catch (e) {
      throw this.faultOf(e, failing, failedLog);
    }
  }

  /** One record the writer could not take: counted into the gap; returns the error to throw. */
  refuse(): WitnessError {
    const s = this.state!;
    s.refused++;
    return new WitnessError('E_IO', `ledger is not writable since ${s.from} (${s.cause}); record counted in the gap`, { file: this.name });
  }

  /** Called by a reopen of `logName` with how many records it holds: the first reopen of the failed log counts. */
  measured(logName: string, sizeNow: number, lostFile: string | null): void {
    const s = this.state!;
    if (s.lostInFlight === null && logName === s.failedLog) s.lostInFlight = Math.max(0, s.sizeAtFailure - sizeNow);
    if (lostFile && !s.lostFiles.includes(lostFile)) s.lostFiles.push(lostFile);
  }

  /** The failed log was sealed before the failure (a host-ledger row was what failed): nothing in flight was lost. */
  measuredSealed(): void {
    const s = this.state!;
    s.lostInFlight ??= 0;
  }

  /** The `ledger.gap` record's attributes, for the reopened log. */
  gapAttributes(): Record<string, string | number | string[]> {
    const s = this.state!;
    return {
      'witness.ledger.gap.from': s.from,
      'witness.ledger.gap.to': nowRfc3339(),
      'witness.ledger.gap.cause': s.cause,
      'witness.ledger.gap.records': s.refused + (s.lostInFlight ?? 0),
      'witness.ledger.gap.refused': s.refused,
      'witness.ledger.gap.lost_in_flight': s.lostInFlight ?? 0,
      'witness.ledger.gap.retries': s.attempts,
      'witness.ledger.gap.lost_files': s.lostFiles,
    };
  }

  /** Keeps the outage so far off the failing disk (outageFile); best effort. */
  private persist(): void {
    const file = outageFile(this.name);
    if (!file || !this.state) return;
    try {
      const s = this.state;
      fs.writeFileSync(`${file}.tmp`, JSON.stringify({ attributes: this.gapAttributes(), failedLog: s.failedLog, sizeAtFailure: s.sizeAtFailure, lostInFlight: s.lostInFlight }), { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
    } catch { /* the journal still has it */ }
  }

  /** The gap record is sealed: the outage is over. */
  ended(): void {
    const s = this.state!;
    const file = outageFile(this.name);
    if (file) fs.rmSync(file, { force: true });
    log.warn({ log: this.name, from: s.from, cause: s.cause, records: s.refused + (s.lostInFlight ?? 0), retries: s.attempts }, 'ledger writable again; gap recorded');
    this.state = null;
    this.gapsRecorded++;
    this.stop();
  }

  /**
   * The writer closes while the disk still fails: the gap cannot be written
   * into this log. Logged (stderr, i.e. the journal, off the failing disk)
   * with what the gap record would have said; the next writer seals the log
   * and records its lost tail, but not this count. Returns the error to throw.
   */
  giveUp(): WitnessError {
    const s = this.state!;
    const gap = this.gapAttributes();
    this.persist();
    const kept = outageFile(this.name) !== null;
    const where = kept ? 'kept in the runtime dir: the next writer of this log records it' : 'not recorded in the ledger';
    log.error({ log: this.name, ...gap }, `closing while the ledger is still not writable: the gap is ${where} (the next start seals the log)`);
    this.stop();
    return new WitnessError('E_IO', `ledger is not writable since ${s.from} (${s.cause}); ${gap['witness.ledger.gap.records'] as number} records not written, ${where}`, { file: this.name });
  }

  retry(): void {
    if (!this.state) return;
    this.state.attempts++;
    this.persist();
    try {
      this.resume();
    } catch (e) {
      // still failing: stay in the outage (the log is abandoned again by the writer)
      if (this.state) log.debug({ log: this.name, err: (e as Error).stack, attempt: this.state.attempts }, 'ledger still not writable');
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const inner = (e?.cause as NodeJS.ErrnoException | undefined);
  const code = e?.code && e.code !== 'E_IO' ? e.code : inner?.code;
  const syscall = e?.syscall ?? inner?.syscall;
  return [code, syscall].filter(Boolean).join(' ') || (e?.message ?? String(err));
}
