import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { ensurePrivateDir, holdFileLock } from '../ledger/state.js';
import { fsyncDir, writeFully } from '../ledger/tail.js';

/**
 * What a cosigner remembers: for each log origin, the latest checkpoint it
 * cosigned. One file per origin, replaced atomically (write to a temp file,
 * fsync, rename, fsync the directory), so a crash leaves either the old or
 * the new record, never a torn one, and a restart resumes from it.
 * Refused requests are appended to `refused.ndjson`: a validly signed
 * checkpoint that is inconsistent with what was cosigned is evidence that
 * the log misbehaved (a rollback or a fork).
 */
export interface OriginState {
  origin: string;
  size: number;
  /** base64 root hash */
  root: string;
  /** The signed checkpoint note as submitted (log signature lines included). */
  checkpoint: string;
  /** The cosignature line returned for it. */
  cosignature: string;
  cosigned_at: number;
}

export interface RefusedRecord {
  time: number;
  status: number;
  origin: string;
  reason: string;
  stored_size: number;
  request: string;
}

/** State dirs open in this process (the pid lock file cannot tell two owners in one process apart). */
const openDirs = new Set<string>();

export class CosignerState {
  private readonly originsDir: string;
  private readonly refusedPath: string;
  private readonly release: () => void;
  /** Per-origin tail of the request chain: check-and-persist runs one request at a time per origin. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(readonly dir: string) {
    ensurePrivateDir(dir);
    const real = fs.realpathSync(dir);
    if (openDirs.has(real)) throw new WitnessError('E_IO', 'another writer (this process) holds this cosigner state', { file: dir });
    this.originsDir = path.join(dir, 'origins');
    ensurePrivateDir(this.originsDir);
    this.refusedPath = path.join(dir, 'refused.ndjson');
    // Two cosigner processes on one state dir could each accept a different next checkpoint.
    const unlock = holdFileLock(path.join(dir, 'cosigner.lock'));
    openDirs.add(real);
    this.release = () => { openDirs.delete(real); unlock(); };
  }

  private fileOf(origin: string): string {
    return path.join(this.originsDir, `${crypto.createHash('sha256').update(origin).digest('hex')}.json`);
  }

  get(origin: string): OriginState | null {
    const f = this.fileOf(origin);
    if (!fs.existsSync(f)) return null;
    const s = JSON.parse(fs.readFileSync(f, 'utf8')) as OriginState;
    return s.origin === origin ? s : null;
  }

  /**
   * Durable before it resolves: the cosignature is only sent after this.
   * Asynchronous (the server keeps serving other origins meanwhile), which is
   * exactly why check-and-persist must be serialized per origin.
   */
  async put(s: OriginState): Promise<void> {
    const f = this.fileOf(s.origin);
    const tmp = `${f}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    const fh = await fs.promises.open(tmp, 'w', 0o600);
    try { await fh.writeFile(JSON.stringify(s)); await fh.sync(); } finally { await fh.close(); }
    await fs.promises.rename(tmp, f);
    fsyncDir(this.originsDir);
  }

  refuse(r: RefusedRecord): void {
    const fd = fs.openSync(this.refusedPath, 'a', 0o600);
    try { writeFully(fd, Buffer.from(`${JSON.stringify(r)}\n`)); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  }

  refused(): RefusedRecord[] {
    if (!fs.existsSync(this.refusedPath)) return [];
    return fs.readFileSync(this.refusedPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RefusedRecord);
  }

  /** Runs `fn` after every earlier request for the same origin has finished. */
  serialize<T>(origin: string, fn: () => Promise<T> | T): Promise<T> {
    const prev = this.chains.get(origin) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(origin, tail);
    void tail.then(() => { if (this.chains.get(origin) === tail) this.chains.delete(origin); });
    return next;
  }

  private closed = false;
  close(): void { if (!this.closed) { this.closed = true; this.release(); } }
}
