import type { ContinuityVerdict, LeafInfo } from './continuity-verify.js';

/**
 * The per-window view of a continuity log over a period: every window
 * [start, end) either has a checkpoint, cosigned in time by every required
 * witness, or is listed with its cause. Windows are aligned to multiples of
 * their length since the epoch (as the pulse aligns them). A `window`
 * checkpoint is sealed just after the window it closes, so it counts for
 * that window; any other checkpoint counts for the window it was sealed in.
 *
 *   ok           checkpoint(s), cosigned within `lateMs` by every witness
 *   late         cosigned, but later than `lateMs` (cause: witness unreachable)
 *   gap          no checkpoint, explained: sensor down (a restart record or a
 *                shutdown bounds it) or a clock jump
 *   unwitnessed  checkpoint(s) no required witness cosigned  → fails
 *   unexplained  no checkpoint and nothing explains it      → fails
 */
export type WindowStatus = 'ok' | 'late' | 'gap' | 'unwitnessed' | 'unexplained';

export interface WindowRow {
  start: string;
  end: string;
  status: WindowStatus;
  checkpoints: number;
  /** Continuity tree size after the window's last checkpoint. */
  size: number | null;
  cosigned: Record<string, string | null>;
  restarts: number;
  drops: number;
  cause: string | null;
}

export interface PeriodReport {
  result: 'VERIFIED' | 'MISMATCH';
  origin: string | null;
  from: string;
  to: string;
  windowSeconds: number;
  size: number;
  windows: WindowRow[];
  gaps: Array<{ from: string; to: string; windows: number; cause: string }>;
  restarts: Array<{ time: string; cause: string }>;
  drops: number;
  witnesses: Array<{ name: string; cosignedSize: number; heldSize: number | null }>;
  failures: string[];
}

export interface PeriodOptions { from: number; to: number; windowMs: number; lateMs?: number; skewMs?: number }

const iso = (ms: number): string => new Date(ms).toISOString();
const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
const epochOf = (logId: string): string => logId.slice(0, logId.lastIndexOf('/'));

interface Annotated extends LeafInfo { window: number; restart: string | null; drops: number; clock: string | null }

function annotate(leaves: LeafInfo[], windowMs: number, skewMs: number): Annotated[] {
  const lastDrops = new Map<string, number>();
  let lastDaemonEpoch: string | null = null;
  let prev: LeafInfo | null = null;
  return leaves.map((l) => {
    const p = l.predicate;
    const aligned = Math.floor(l.time / windowMs) * windowMs;
    const window = p.reason === 'window' ? aligned - windowMs : aligned;
    let restart: string | null = null;
    if (p.reason === 'restart') restart = `sensor restarted after a crash (${p.log} ${p.log_id}, restart ${p.restart_count})`;
    if (p.log === 'daemon') {
      const epoch = epochOf(p.log_id);
      if (lastDaemonEpoch !== null && epoch !== lastDaemonEpoch) restart ??= `daemon restarted (new epoch ${epoch})`;
      lastDaemonEpoch = epoch;
    }
    if (prev && prev.predicate.sensor_boot_id !== p.sensor_boot_id && p.sensor_boot_id !== 'unknown') restart ??= `host rebooted (boot ${p.sensor_boot_id})`;
    const total = sum(p.drops);
    const before = lastDrops.get(`${p.log}:${p.log_id}`) ?? 0;
    lastDrops.set(`${p.log}:${p.log_id}`, total);
    let clock: string | null = null;
    if (prev && l.time < prev.time - 1000) clock = `clock jumped back ${Math.round((prev.time - l.time) / 1000)} s`;
    for (const [w, t] of Object.entries(l.witnessedAt)) {
      if (t !== null && t < l.time - skewMs) clock ??= `host clock ${Math.round((l.time - t) / 1000)} s ahead of witness ${w}`;
    }
    prev = l;
    return { ...l, window, restart, drops: Math.max(0, total - before), clock };
  });
}

export function buildPeriod(v: ContinuityVerdict, opts: PeriodOptions): PeriodReport {
  const lateMs = opts.lateMs ?? 300_000;
  const W = opts.windowMs;
  const leaves = annotate(v.leaves, W, opts.skewMs ?? 120_000);
  const witnesses = Object.keys(v.cosignedSize);
  const first = Math.floor(opts.from / W) * W;
  const rows: WindowRow[] = [];
  for (let start = first; start < opts.to; start += W) {
    const inWin = leaves.filter((l) => l.window === start);
    const row: WindowRow = {
      start: iso(start), end: iso(start + W), status: 'ok', checkpoints: inWin.length, size: null, cosigned: {},
      restarts: inWin.filter((l) => l.restart).length, drops: inWin.reduce((a, l) => a + l.drops, 0), cause: null,
    };
    const causes: string[] = [];
    for (const l of inWin) { if (l.restart) causes.push(l.restart); if (l.clock) causes.push(l.clock); }
    if (inWin.length > 0) {
      const last = inWin[inWin.length - 1]!;
      row.size = last.index + 1;
      for (const w of witnesses) {
        const t = last.witnessedAt[w] ?? null;
        row.cosigned[w] = t === null ? null : iso(t);
        if (t === null) { row.status = 'unwitnessed'; causes.push(`not cosigned by ${w}`); } else if (t > last.time + lateMs && row.status === 'ok') {
          row.status = 'late';
          causes.push(`witness ${w} unreachable: cosigned ${Math.round((t - last.time) / 60000)} min after sealing`);
        }
      }
    } else {
      for (const w of witnesses) row.cosigned[w] = null;
      const prev = [...leaves].reverse().find((l) => l.window < start);
      const next = leaves.find((l) => l.window > start);
      if (prev && next && (next.restart || prev.predicate.reason === 'shutdown')) {
        row.status = 'gap';
        causes.push(`sensor down from ${iso(prev.time)} to ${iso(next.time)}${next.restart ? ` (${next.restart})` : ' (clean shutdown)'}`);
      } else if (prev && next && next.time < prev.time) {
        row.status = 'gap';
        causes.push(`clock jump: the next checkpoint (${iso(next.time)}) is older than the previous (${iso(prev.time)})`);
      } else {
        row.status = 'unexplained';
        causes.push(!prev ? 'no checkpoint yet: the log starts later' : !next
          ? `no checkpoint after ${iso(prev.time)} and no restart recorded: sensor stopped without a shutdown record, or the state dir was rolled back`
          : `no checkpoint between ${iso(prev.time)} and ${iso(next.time)}, and no restart or shutdown explains it`);
      }
    }
    row.cause = causes.length ? causes.join('; ') : null;
    rows.push(row);
  }
  const gaps: PeriodReport['gaps'] = [];
  for (const r of rows) {
    if (r.status !== 'gap' && r.status !== 'unexplained') continue;
    const g = gaps[gaps.length - 1];
    if (g && g.to === r.start && g.cause === r.cause) { g.to = r.end; g.windows++; } else gaps.push({ from: r.start, to: r.end, windows: 1, cause: r.cause! });
  }
  const inPeriod = leaves.filter((l) => l.window >= first && l.window < opts.to);
  const failures = [...v.failures];
  for (const r of rows) if (r.status === 'unwitnessed' || r.status === 'unexplained') failures.push(`window ${r.start}: ${r.status}: ${r.cause}`);
  return {
    result: failures.length === 0 ? 'VERIFIED' : 'MISMATCH',
    origin: v.origin,
    from: iso(opts.from),
    to: iso(opts.to),
    windowSeconds: W / 1000,
    size: v.size,
    windows: rows,
    gaps,
    restarts: inPeriod.filter((l) => l.restart).map((l) => ({ time: iso(l.time), cause: l.restart! })),
    drops: inPeriod.reduce((a, l) => a + l.drops, 0),
    witnesses: witnesses.map((name) => ({ name, cosignedSize: v.cosignedSize[name] ?? 0, heldSize: v.held.find((h) => h.witness === name)?.size ?? null })),
    failures,
  };
}
