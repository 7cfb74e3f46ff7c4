import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { continuityDir, readContinuity, storeCosignature, type ContinuityCheckpoint } from '../ledger/continuity.js';
import { consistencyProofWith, rootOfLeafHashes, leafHash } from '../ledger/merkle.js';
import { splitNote } from '../ledger/note.js';
import { verify as verifyCosignature } from '../ledger/cosignature.js';
import type { NoteVerifierKey } from '../ledger/note-keys.js';
import { loadVerifierKey } from '../ledger/note-key-files.js';
import { fsyncDir, writeFully } from '../ledger/tail.js';
import { log } from '../log.js';

/**
 * The sensor side of c2sp.org/tlog-witness: sends every continuity
 * checkpoint, in order, to each witness with a consistency proof from the
 * size that witness last cosigned, and stores the cosignatures beside the
 * checkpoints. While a witness is unreachable nothing is lost: the pending
 * checkpoints are the ones after its last cosigned size, on disk; catching
 * up sends them in order. The queue is bounded (`maxQueue` checkpoints per
 * round): older ones past the bound are skipped and counted (`dropped`) —
 * the newest still carries a proof from the witness's size, so consistency
 * is never skipped, only per-window cosignatures.
 */
export interface WitnessTarget { url: string; vkey: NoteVerifierKey }

export interface WitnessStats {
  witness: string;
  url: string;
  size: number;
  pending: number;
  cosigned: number;
  conflicts: number;
  refused: number;
  unreachable: number;
  dropped: number;
  lastError: string | null;
}

interface PersistedState { witness: string; url: string; size: number; dropped_through: number }

export interface PusherOptions {
  stateDir: string;
  witnesses: WitnessTarget[];
  maxQueue?: number;
  /** POSIX seconds, for the `received` stamp. */
  now?: () => number;
  timeoutMs?: number;
}

/** `URL=VKEYFILE` (the --witness flag). */
export function parseWitnessFlag(s: string): WitnessTarget {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new WitnessError('E_CONFIG', `expected URL=VKEYFILE, got '${s}'`, { file: 'witness run', field: '--witness' });
  const url = s.slice(0, eq);
  if (!/^https?:\/\//.test(url)) throw new WitnessError('E_CONFIG', `not an http(s) URL: '${url}'`, { file: 'witness run', field: '--witness' });
  return { url: url.replace(/\/+$/, ''), vkey: loadVerifierKey(s.slice(eq + 1), '--witness') };
}

export class WitnessPusher {
  private readonly stats = new Map<string, WitnessStats>();
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly maxQueue: number;

  constructor(private readonly opts: PusherOptions) {
    this.maxQueue = opts.maxQueue ?? 1024;
    for (const w of opts.witnesses) {
      const p = this.load(w);
      this.stats.set(w.vkey.name, { witness: w.vkey.name, url: w.url, size: p.size, pending: 0, cosigned: 0, conflicts: 0, refused: 0, unreachable: 0, dropped: 0, lastError: null });
    }
  }

  private file(w: WitnessTarget): string {
    return path.join(continuityDir(this.opts.stateDir), `witness-${crypto.createHash('sha256').update(w.vkey.name).digest('hex').slice(0, 16)}.json`);
  }

  private load(w: WitnessTarget): PersistedState {
    try { return JSON.parse(fs.readFileSync(this.file(w), 'utf8')) as PersistedState; } catch { return { witness: w.vkey.name, url: w.url, size: 0, dropped_through: 0 }; }
  }

  private save(w: WitnessTarget, s: PersistedState): void {
    const f = this.file(w);
    fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
    const tmp = `${f}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try { writeFully(fd, Buffer.from(JSON.stringify(s))); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.renameSync(tmp, f);
    fsyncDir(path.dirname(f));
  }

  snapshot(): WitnessStats[] { return [...this.stats.values()].map((s) => ({ ...s })); }

  /** Pushes everything pending to every witness; never overlaps itself. */
  sync(): Promise<void> {
    this.running ??= (async () => {
      try {
        const c = readContinuity(this.opts.stateDir);
        const hashes = c.leaves.map((l) => leafHash(l));
        for (const w of this.opts.witnesses) await this.syncOne(w, c.checkpoints, hashes);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  start(intervalMs = 2000): void {
    this.timer = setInterval(() => { void this.sync().catch((err) => log.error({ err }, 'witness push failed')); }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and makes a last attempt (bounded by `timeoutMs` per request). */
  async close(): Promise<WitnessStats[]> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sync().catch((err) => log.error({ err }, 'witness push failed'));
    return this.snapshot();
  }

  private async syncOne(w: WitnessTarget, checkpoints: ContinuityCheckpoint[], hashes: Uint8Array[]): Promise<void> {
    const st = this.stats.get(w.vkey.name)!;
    const p = this.load(w);
    const mth = (s: number, e: number): Uint8Array => rootOfLeafHashes(hashes, s, e);
    for (let conflicts = 0; conflicts < 3;) {
      let pending = checkpoints.filter((cp) => cp.size > p.size);
      if (pending.length > this.maxQueue) {
        const skipped = pending.slice(0, pending.length - this.maxQueue);
        const newly = skipped.filter((cp) => cp.size > p.dropped_through).length;
        st.dropped += newly;
        if (newly > 0) log.warn({ witness: w.vkey.name, skipped: newly }, 'witness queue full: older checkpoints will not be cosigned one by one');
        p.dropped_through = skipped[skipped.length - 1]!.size;
        if (newly > 0) this.save(w, p);
        pending = pending.slice(-this.maxQueue);
      }
      st.pending = pending.length;
      const local = checkpoints[checkpoints.length - 1]?.size ?? 0;
      if (p.size > local) {
        st.conflicts++;
        st.lastError = `witness holds size ${p.size}, this state dir only ${local}: rolled back or replaced`;
        log.error({ witness: w.vkey.name, witnessSize: p.size, localSize: local }, 'witness holds a later checkpoint than this state dir');
        return;
      }
      let restart = false;
      for (const cp of pending) {
        const proof = p.size === 0 ? [] : consistencyProofWith(mth, p.size, cp.size);
        const body = `old ${p.size}\n${proof.map((h) => `${Buffer.from(h).toString('base64')}\n`).join('')}\n${cp.note}`;
        let res: Response;
        let text: string;
        try {
          res = await fetch(`${w.url}/add-checkpoint`, { method: 'POST', body, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000) });
          text = await res.text();
        } catch (err) {
          st.unreachable++;
          st.lastError = `unreachable: ${(err as Error).message}`;
          log.warn({ witness: w.vkey.name, url: w.url, pending: st.pending, err: (err as Error).message }, 'witness unreachable; checkpoints stay queued');
          return;
        }
        if (res.status === 200) {
          const cpBody = splitNote(cp.note).text;
          const lines = text.split('\n').filter(Boolean).map((l) => `${l}\n`);
          const ours = lines.filter((l) => l.startsWith(`\u2014 ${w.vkey.name} `));
          let stored = 0;
          for (const line of ours) {
            try {
              verifyCosignature(cpBody, line, w.vkey);
              storeCosignature(this.opts.stateDir, { size: cp.size, witness: w.vkey.name, line, received: new Date((this.opts.now?.() ?? Date.now() / 1000) * 1000).toISOString() });
              stored++;
            } catch (err) {
              log.error({ witness: w.vkey.name, err: (err as Error).message }, 'witness returned a cosignature that does not verify');
            }
          }
          if (stored === 0) { st.refused++; st.lastError = 'no valid cosignature in a 200 response'; return; }
          st.cosigned++;
          p.size = cp.size;
          st.size = p.size;
          st.pending--;
          this.save(w, p);
          continue;
        }
        if (res.status === 409 && res.headers.get('content-type')?.startsWith('text/x.tlog.size')) {
          const reported = /^(0|[1-9][0-9]*)\n$/.exec(text);
          conflicts++;
          st.conflicts++;
          if (!reported || Number(reported[1]) === p.size) {
            st.lastError = `witness refused size ${cp.size} with 409 at its size ${p.size}: a different root at that size (fork)`;
            log.error({ witness: w.vkey.name, size: cp.size, witnessSize: p.size }, 'witness holds a different checkpoint at this size');
            return;
          }
          p.size = Number(reported[1]);
          st.size = p.size;
          this.save(w, p);
          restart = true; // resend from the size the witness reported
          break;
        }
        st.refused++;
        st.lastError = `HTTP ${res.status}: ${text.trim().slice(0, 200)}`;
        log.error({ witness: w.vkey.name, status: res.status, body: text.trim().slice(0, 200), size: cp.size }, 'witness refused a checkpoint');
        return;
      }
      if (!restart) return;
    }
  }
}

/** Takes every `--witness URL=VKEYFILE` before `--` out of argv (the flag repeats; the rest goes to the usual parser). */
export function takeWitnessFlags(argv: string[]): { witnesses: WitnessTarget[]; argv: string[] } {
  const witnesses: WitnessTarget[] = [];
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { out.push(...argv.slice(i)); break; }
    if (a === '--witness') {
      const v = argv[++i];
      if (v === undefined) throw new WitnessError('E_CONFIG', '--witness needs URL=VKEYFILE', { file: 'witness run', field: '--witness' });
      witnesses.push(parseWitnessFlag(v));
    } else if (a.startsWith('--witness=')) {
      witnesses.push(parseWitnessFlag(a.slice('--witness='.length)));
    } else {
      out.push(a);
    }
  }
  return { witnesses, argv: out };
}
