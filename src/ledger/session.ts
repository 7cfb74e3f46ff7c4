import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import type { Attributes } from '../events/envelope.js';
import type { EventName } from '../events/names.js';
import type { CheckpointReason } from './checkpoint.js';
import { nowRfc3339, sensorBootId } from './clock.js';
import { filesystemRoot, type TrackedRoot } from './fs-tree.js';
import { appendGlobalRow, notePendingRowAsync, rowDir, type SessionRow } from './global.js';
import { sha256 } from './hash.js';
import { hostAnchorAttributes } from './host-head.js';
import { sealCrashed } from './seal-crashed.js';
import { loadPrivateKey } from './keys.js';
import { continuityHook, flushContinuity } from './continuity.js';
import { log as logger } from '../log.js';
import { LedgerLog } from './log-writer.js';
import { isIoFault, LedgerOutage, takeUnrecordedOutage } from './outage.js';
import { ensureHostKey } from './note-key-files.js';
import { restartAttributes } from './recovery.js';
import {
  SESSION_CHECKPOINTS_FILE, SESSION_EVENTS_FILE, SESSION_FILE, SESSION_OPEN_FILE,
  ensurePrivateDir, holdFileLock, resolveStateDir,
} from './state.js';
import { refuseUnsafeDir } from './safe-path.js';
import { abandonPreparedSession, durableTempOf, placePreparedFiles, type PreparedSession } from './session-prepare.js';
import { EarlySync, fsyncAsync, fsyncDir, writeFully, writeFullyAsync } from './tail.js';

export interface SessionWriterOptions {
  /** Session directory; default `<stateDir>/sessions/<session id>`. */
  dir?: string;
  /** PKCS#8 PEM ed25519 key (0600). Default: `<stateDir>/keys/host.key`, created on first use. */
  signKeyPath?: string;
  /** Already-loaded key (tests, embedding); wins over signKeyPath. */
  signKey?: KeyObject;
  command: string[];
  /** Paths whose filesystem Merkle roots are recorded before and after. */
  trackPaths?: string[];
  checkpointEveryEvents?: number;
  checkpointEverySeconds?: number;
  flushIntervalMs?: number;
  /** Host state dir (global ledger); default $WITNESS_STATE_DIR or /var/lib/agent-witness. */
  stateDir?: string;
  sessionId?: string;
  /** Seal crashed sessions and daemon epochs of this state dir before opening (default true). */
  sealCrashed?: boolean;
  /** extra sensor.start attributes (who the agent runs as: `witness.agent.*`) */
  startAttributes?: Attributes;
  /** Ledger record form (src/ledger/record.ts); default 2, 1 only to test reading old ledgers. */
  recordFormat?: 1 | 2;
  /** After a write failure (disk full, EIO), retry the disk this often (default 1000 ms; src/ledger/outage.ts). */
  retryIntervalMs?: number;
  /** A session dir made ready ahead (src/ledger/session-prepare.ts): its id and dir, its files and lock. Wins over dir and sessionId. */
  prepared?: PreparedSession;
}

export interface ExecutableIdentity { path?: string; sha256?: string; [k: string]: unknown }

export interface SessionSummary {
  exitCode: number | null;
  signal?: string | null;
  counters: Record<string, number>;
  drops: Record<string, number>;
  executable?: ExecutableIdentity;
  /** Set when a later writer closes a session its killed writer left open: who sealed it. */
  sealedBy?: string;
  /** who the agent ran as and what happened to what outlived it (`witness run`) */
  agent?: Record<string, unknown>;
}

/** Written at open so a restarted writer can finish the session it resumes. */
interface OpenState {
  session_id: string;
  command: string[];
  started: string;
  track_before: TrackedRoot[];
  track_paths: string[];
  start_attributes?: Attributes;
}

/** The host's default signing key, `<stateDir>/keys/host.key`, created (0600) on first use. */
export function loadOrCreateHostKey(stateDir: string): KeyObject {
  return loadPrivateKey(ensureHostKey(stateDir));
}

/** data in file's temporary, fsync'd; returns the temporary (a prepared session created it ahead: no inode is made here then). */
function writeTempDurably(file: string, data: string): string {
  const tmp = durableTempOf(file);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try { writeFully(fd, Buffer.from(data, 'utf8')); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  return tmp;
}

/** writeTempDurably with the write and fsync on libuv's threadpool. */
async function writeTempDurablyAsync(file: string, data: string): Promise<string> {
  const tmp = durableTempOf(file);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try { await writeFullyAsync(fd, Buffer.from(data, 'utf8')); await fsyncAsync(fd); } finally { fs.closeSync(fd); }
  return tmp;
}

function writeFileDurably(file: string, data: string): void {
  fs.renameSync(writeTempDurably(file, data), file);
  fsyncDir(path.dirname(file));
}

/**
 * A `witness run` session: events and checkpoints in the session dir,
 * `session.json` at close, and one row in the host ledger.
 *
 * Creating a writer on a directory that already holds an unfinished session
 * (the previous writer was killed) resumes it: the torn tail is cut off and
 * reported in a `sensor.restart` record, and the chain continues.
 */
export class SessionWriter {
  private closed = false;
  private log!: LedgerLog;
  /** while set, a seal's continuity leaf is deferred (src/ledger/continuity.ts), appended within this many ms at the latest */
  private leafWithinMs: number | null = null;
  /** A disk failure in progress: appends refused and counted, the disk retried, the gap recorded on resume. */
  readonly outage: LedgerOutage;

  private constructor(
    readonly dir: string,
    readonly stateDir: string,
    readonly sessionId: string,
    private readonly newLog: () => LedgerLog,
    private readonly open: OpenState,
    private readonly unlock: () => void,
    retryIntervalMs: number,
  ) {
    this.outage = new LedgerOutage(dir, retryIntervalMs, () => this.resume());
    this.log = newLog();
  }

  static async create(opts: SessionWriterOptions): Promise<SessionWriter> {
    const stateDir = resolveStateDir(opts.stateDir);
    ensurePrivateDir(stateDir);
    const prep = opts.prepared;
    let unlock: (() => void) | null = null;
    try {
      const key = opts.signKey ?? (opts.signKeyPath ? loadPrivateKey(opts.signKeyPath) : loadOrCreateHostKey(stateDir));
      const sessionId = prep?.sessionId ?? opts.sessionId ?? crypto.randomUUID();
      const dir = path.resolve(prep?.dir ?? opts.dir ?? path.join(stateDir, 'sessions', sessionId));
      refuseUnsafeDir(dir, opts.dir !== undefined && !prep ? '--session-dir' : 'session dir');
      // A new session first seals what killed writers left open, so no session stays unclosed.
      const sealed = opts.sealCrashed === false ? [] : await sealCrashed(stateDir, key, `session/${sessionId}`, dir);
      ensurePrivateDir(dir);
      if (fs.existsSync(path.join(dir, SESSION_FILE))) {
        throw new WitnessError('E_LEDGER', 'session is already closed (session.json exists); use a new --session-dir', { file: dir });
      }
      unlock = prep?.unlock ?? holdFileLock(path.join(dir, 'writer.lock'));
      return SessionWriter.openLocked(opts, stateDir, key, sessionId, dir, unlock, sealed);
    } catch (e) {
      // a prepared dir that did not become a session goes whole (lock, note, files); an own lock is let go
      if (prep) abandonPreparedSession(prep);
      else unlock?.();
      throw e;
    }
  }

  private static openLocked(opts: SessionWriterOptions, stateDir: string, key: KeyObject, sessionId: string, dir: string, unlock: () => void, sealed: string[]): SessionWriter {
    const openPath = path.join(dir, SESSION_OPEN_FILE);
    let open: OpenState;
    if (fs.existsSync(openPath)) {
      open = JSON.parse(fs.readFileSync(openPath, 'utf8')) as OpenState;
    } else {
      const trackPaths = (opts.trackPaths ?? []).map((p) => path.resolve(p));
      open = {
        session_id: sessionId, command: opts.command, started: nowRfc3339(), track_before: trackPaths.map(filesystemRoot), track_paths: trackPaths,
        ...(opts.startAttributes !== undefined && { start_attributes: opts.startAttributes }),
      };
      if (opts.prepared) {
        // session.open.json renamed in first, then the prepared logs, all under its one directory sync
        placePreparedFiles(dir, writeTempDurably(openPath, JSON.stringify(open)), openPath);
      } else {
        // the log's two files first, so the one directory sync of session.open.json covers their entries too
        for (const f of [SESSION_EVENTS_FILE, SESSION_CHECKPOINTS_FILE]) fs.closeSync(fs.openSync(path.join(dir, f), 'a', 0o600));
        writeFileDurably(openPath, JSON.stringify(open));
      }
    }
    let writer: SessionWriter | null = null;
    const newLog = (): LedgerLog => new LedgerLog({
      dir,
      eventsFile: SESSION_EVENTS_FILE,
      checkpointsFile: SESSION_CHECKPOINTS_FILE,
      log: 'session',
      logId: open.session_id,
      key,
      // a seal's leaf can wait for the state dir's next continuity append (checkpoint's leafWithinMs, close)
      onSealed: continuityHook(stateDir, () => writer?.leafWithinMs ?? null, (e) => logger.warn({ err: e.message, stateDir }, 'continuity: deferred leaves not appended; the next append takes them')),
      onBackgroundFailure: (e) => { if (writer && isIoFault(e) && !writer.outage.failing) writer.fault(e); },
      flushBytes: 1 << 20, // a flood's writes (and hash jobs) in 1 MiB pieces, not 256 KiB: a quarter of the syscalls and handoffs; the 100 ms timer still bounds what a kill loses
      asyncSeal: true, // a flood's count checkpoints fsync on the threadpool; close and explicit ones stay synchronous
      ...(opts.checkpointEveryEvents !== undefined && { checkpointEveryEvents: opts.checkpointEveryEvents }),
      ...(opts.checkpointEverySeconds !== undefined && { checkpointEverySeconds: opts.checkpointEverySeconds }),
      ...(opts.flushIntervalMs !== undefined && { flushIntervalMs: opts.flushIntervalMs }),
      ...(opts.recordFormat !== undefined && { recordFormat: opts.recordFormat }),
    });
    writer = new SessionWriter(dir, stateDir, open.session_id, newLog, open, unlock, opts.retryIntervalMs ?? 1000);
    const log = writer.log;
    if (log.recovered) writer.recordRestart();
    else writer.appendControl('sensor.start', {
      'witness.session.id': open.session_id,
      'process.command_args': open.command,
      'witness.ledger.key_id': log.keyIdHex,
      ...hostAnchorAttributes(stateDir),
      'witness.ledger.sealed_after_crash': sealed,
      'witness.sensor.boot_id': sensorBootId(),
      ...open.start_attributes,
    });
    return writer;
  }

  private recordRestart(): void {
    const rec = this.log.recovered!;
    // an outage the crashed writer could not record (closed or killed while the disk failed)
    const gap = takeUnrecordedOutage(this.dir, { log: 'session', seq: rec.seq });
    if (gap) this.log.append(JSON.stringify({ time: nowRfc3339(), event: 'ledger.gap', attributes: { ...gap, 'witness.session.id': this.sessionId } }));
    this.log.markRestart();
    this.appendControl('sensor.restart', {
      'witness.session.id': this.sessionId,
      ...restartAttributes(rec, this.log.restartCount),
      'witness.ledger.last_checkpoint_index': rec.lastCheckpoint?.index ?? null,
      'witness.sensor.boot_id': sensorBootId(),
    });
    this.log.checkpoint('restart');
  }

  get eventsPath(): string { return this.log.eventsPath; }
  get size(): number { return this.log.size; }

  /**
   * Hot path: one exported event's exact NDJSON line, without the newline.
   * During a disk outage throws E_IO at once (the record counted in the gap).
   */
  append(eventLine: string): number {
    if (this.outage.failing) throw this.outage.refuse();
    return this.guard(() => this.log.append(eventLine));
  }

  /** A control-plane record (sensor.start/stop/drops, findings, scope changes) in the envelope format. */
  appendControl(event: EventName, attributes: Attributes): number {
    if (this.outage.failing) throw this.outage.refuse();
    return this.guard(() => this.log.append(JSON.stringify({ time: nowRfc3339(), event, attributes })));
  }

  /** Latest per-stage counters; they ride in every later checkpoint (ignored during an outage: the next call brings them). */
  updateCounters(counters: Record<string, number>, drops: Record<string, number>): void {
    if (!this.outage.failing) this.log.setCounters(counters, drops);
  }

  /**
   * Seal now (e.g. at a pulse window close), durable when it returns. `leafWithinMs`: its
   * continuity leaf may wait for the state dir's next continuity append, this long at the
   * latest (the resident daemon's `sensor.start` seal: the agent waits for the seal, not the leaf).
   */
  checkpoint(reason: CheckpointReason = 'window', opts: { leafWithinMs?: number } = {}): void {
    if (this.outage.failing) throw new WitnessError('E_IO', 'session ledger is not writable (outage in progress); no checkpoint', { file: this.dir });
    this.leafWithinMs = opts.leafWithinMs ?? null;
    try {
      this.guard(() => this.log.checkpoint(reason));
    } finally {
      this.leafWithinMs = null;
    }
  }

  /** An I/O failure of the log starts the outage (LedgerOutage.faultOf, src/ledger/outage.ts); others pass through. */
  private fault(e: unknown): unknown {
    return this.outage.faultOf(e, this.log, 'session');
  }

  private guard<T>(work: () => T): T {
    return this.outage.guard(this.log, 'session', work);
  }

  /** One retry: reopen the log as after a crash (torn tail cut off), append the `ledger.gap` record, seal it. */
  private resume(): void {
    try {
      this.log = this.newLog();
      this.outage.measured('session', this.log.recovered?.seq ?? 0, this.log.recovered?.lost.file ?? null);
      this.log.append(JSON.stringify({ time: nowRfc3339(), event: 'ledger.gap', attributes: { ...this.outage.gapAttributes(), 'witness.session.id': this.sessionId } }));
      this.log.checkpoint('gap');
    } catch (e) {
      this.log.abandon();
      throw e;
    }
    this.outage.ended();
  }

  /** Final checkpoint, session.json, host ledger row. */
  async close(summary: SessionSummary): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // An outage: one last retry; while the disk still fails the session stays unclosed (the next writer seals it).
    if (this.outage.failing) this.outage.retry();
    this.outage.stop();
    if (this.outage.failing) {
      this.unlock();
      throw this.outage.giveUp();
    }
    this.appendControl('sensor.stop', {
      'witness.session.id': this.sessionId,
      'process.exit.code': summary.exitCode,
      'process.exit.signal': summary.signal ?? null,
      ...(summary.sealedBy !== undefined ? { 'witness.ledger.sealed_by': summary.sealedBy } : {}),
    });
    this.log.setCounters(summary.counters, summary.drops);
    this.log.flush();
    const ended = nowRfc3339();
    const session = {
      version: 1,
      session_id: this.sessionId,
      command: this.open.command,
      executable: summary.executable ?? null,
      ...(summary.agent !== undefined && { agent: summary.agent }),
      exit_code: summary.exitCode,
      signal: summary.signal ?? null,
      started: this.open.started,
      ended,
      sensor_boot_id: sensorBootId(),
      restart_count: this.log.restartCount,
      ...(summary.sealedBy !== undefined ? { sealed_after_crash_by: summary.sealedBy } : {}),
      counters: summary.counters,
      drops: summary.drops,
      track: this.open.track_paths.map((p, i) => ({ path: p, before: this.open.track_before[i] ?? null, after: filesystemRoot(p) })),
      ledger: {
        events_file: SESSION_EVENTS_FILE,
        checkpoints_file: SESSION_CHECKPOINTS_FILE,
        tree_size: this.log.size,
        root_hash: this.log.rootHex,
        chain_head: this.log.chainHeadHex,
        key_id: this.log.keyIdHex,
        public_key: this.log.publicKeyBase64,
      },
    };
    const sessionText = `${JSON.stringify(session, null, 2)}\n`;
    const sessionSha = sha256(Buffer.from(sessionText, 'utf8')).toString('hex');
    const rowOf = (finalCheckpointSha: string): SessionRow => ({
      kind: 'session',
      session_id: this.sessionId,
      dir: rowDir(this.stateDir, this.dir),
      started: this.open.started,
      ended,
      command: this.open.command,
      exit_code: summary.exitCode,
      tree_size: session.ledger.tree_size,
      root_hash: session.ledger.root_hash,
      chain_head: session.ledger.chain_head,
      final_checkpoint_sha256: finalCheckpointSha,
      session_sha256: sessionSha,
      key_id: session.ledger.key_id,
    });
    // session.json exists only once three things are durable, with no order among them: its
    // temporary, the host-ledger row's note (so a crash from then on cannot orphan the session),
    // and the final checkpoint, which signs session.json's digest (events fsync'd first, as ever).
    // The first two are fsync'd on libuv's threadpool while this thread seals the third: ext4
    // commits them together instead of one after another.
    const sessionPath = path.join(this.dir, SESSION_FILE);
    const temp = writeTempDurablyAsync(sessionPath, sessionText);
    let row: SessionRow | null = null;
    let noting: Promise<string> | null = null;
    // The final checkpoint's continuity leaf goes with the host-ledger row's, in one append (one
    // lock, two fsyncs, not four), the final one first as ever. A crash before that append leaves
    // what a crash between a seal and its leaf leaves (src/ledger/continuity.ts, deferContinuity).
    try {
      try {
        this.leafWithinMs = 1000;
        this.log.checkpoint('shutdown', { sessionSha256: sessionSha, onSigned: (sha) => { row = rowOf(sha); noting = notePendingRowAsync(this.stateDir, row); } });
      } finally {
        this.leafWithinMs = null;
      }
      this.log.close();
    } catch (e) {
      this.flushLeaves();
      throw e;
    } finally {
      // a failed seal: what runs on the threadpool still settles, unheard (the session stays unclosed)
      temp.catch(() => {});
      (noting as Promise<string> | null)?.catch(() => {});
    }
    try {
      const [tmp, note] = await Promise.all([temp, noting!]);
      fs.renameSync(tmp, sessionPath);
      // session.json's entry durable before the row is written, as ever: its directory's fsync starts
      // now on the threadpool and is made (fsyncSync) under the host-ledger lock before the row's first
      // byte, while the lock, the ledger's tail and its orphan notes were read meanwhile
      const entry = EarlySync.of(this.dir);
      let entryDurable = false;
      const sealed = (): void => {
        if (entryDurable) return;
        entry.sync();
        entryDurable = true;
        fs.rmSync(path.join(this.dir, SESSION_OPEN_FILE), { force: true });
        this.unlock();
      };
      try {
        appendGlobalRow(this.stateDir, this.log.signingKey, row!, note, { beforeWrite: sealed });
      } finally {
        // the append failed before writing (its lock, its reads): the session is sealed all the same, its row noted
        try { sealed(); } finally { entry.release(); }
      }
    } finally {
      this.flushLeaves(); // the row's append took the leaf, unless it failed before its seal
    }
  }

  /** Deferred continuity leaves appended now; a failure is logged (they wait for the next append), never thrown over the caller's error. */
  private flushLeaves(): void {
    try { flushContinuity(this.stateDir); } catch (e) { logger.warn({ err: (e as Error).message, stateDir: this.stateDir }, 'continuity: deferred leaves not appended; the next append takes them'); }
  }
}
