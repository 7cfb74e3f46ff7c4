import type { PulseRepo } from './repo.js';
import type { WindowRecord } from './window.js';

/**
 * Rolling import of closed windows. The dataset must grow by exactly the
 * window's rows and each agent's windows must follow on from its last one:
 * a window imported twice or a window skipped is a fault, never a silent
 * no-op. Call inside a transaction; an ImportAbort rolls it back.
 */
export type ImportFaultReason = 'double_import' | 'skipped_windows';

export interface ImportFault {
  reason: ImportFaultReason;
  agent: string;
  windowStart: number;
  windowEnd: number;
  /** Where the agent's previous window ended (what we expected to start at). */
  expectedStart: number | null;
  detail: string;
}

export class ImportAbort extends Error {
  constructor(readonly faults: ImportFault[]) {
    super(faults.map((f) => f.detail).join('; '));
    this.name = 'ImportAbort';
  }
}

/**
 * Checks continuity for each record against the agent's last imported window.
 * Returns skip faults (the window is still imported — its data is good, what
 * came before it is missing); throws ImportAbort on overlap (double import).
 */
export function checkContinuity(repo: PulseRepo, records: readonly WindowRecord[]): ImportFault[] {
  const faults: ImportFault[] = [];
  const overlaps: ImportFault[] = [];
  for (const r of records) {
    const last = repo.agentState(r.agent)?.lastWindowEnd ?? null;
    if (last === null || last === r.windowStart) continue;
    const base = { agent: r.agent, windowStart: r.windowStart, windowEnd: r.windowEnd, expectedStart: last };
    if (r.windowStart < last) {
      overlaps.push({ ...base, reason: 'double_import', detail: `window ${r.windowStart} for ${r.agent} overlaps windows already imported up to ${last}` });
    } else {
      faults.push({ ...base, reason: 'skipped_windows', detail: `windows ${last}..${r.windowStart} for ${r.agent} were never imported` });
    }
  }
  if (overlaps.length > 0) throw new ImportAbort(overlaps);
  return faults;
}

/** Inserts the rows and asserts the table grew by exactly their number. */
export function importRows(repo: PulseRepo, records: readonly WindowRecord[]): void {
  const starts = [...new Set(records.map((r) => r.windowStart))];
  const count = (): number => starts.reduce((n, s) => n + repo.countWindowsAt(s), 0);
  const before = count();
  const ignored = records.filter((r) => repo.insertWindow(r) === 0);
  const grew = count() - before;
  if (grew !== records.length) {
    const culprits = ignored.length > 0 ? ignored : records;
    throw new ImportAbort(culprits.map((r) => ({
      reason: 'double_import' as const, agent: r.agent, windowStart: r.windowStart, windowEnd: r.windowEnd, expectedStart: null,
      detail: `store grew by ${grew} rows for ${records.length} windows: window ${r.windowStart} of ${r.agent} already imported`,
    })));
  }
}

/** Continuity check + rows, for callers that import outside the engine (tests, backfill). */
export function importWindows(repo: PulseRepo, records: readonly WindowRecord[]): ImportFault[] {
  return repo.transaction(() => {
    const faults = checkContinuity(repo, records);
    importRows(repo, records);
    for (const r of records) {
      const s = repo.agentState(r.agent);
      repo.saveAgent({
        agent: r.agent, active: s?.active ?? true, quietStreak: r.quietStreak, alertActive: r.alertActive,
        lastWindowStart: r.windowStart, lastWindowEnd: r.windowEnd, lastBand: s?.lastBand ?? null,
      });
    }
    return faults;
  });
}
