import type { Band } from './band.js';
import { msToRfc3339 } from './events.js';
import type { PulseRepo } from './repo.js';
import type { WindowReason, WindowStatus } from './window.js';

/** Per-agent pulse state as the daemon last wrote it to the store. */
export interface AgentStatus {
  agent: string;
  active: boolean;
  quietStreak: number;
  alertActive: boolean;
  band: Band | null;
  lastWindow: null | {
    start: string;
    end: string;
    status: WindowStatus;
    reasons: WindowReason[];
    externalFlows: number;
    flows: number;
  };
}

export function pulseStatus(repo: PulseRepo): AgentStatus[] {
  return repo.listAgents().map((a) => {
    const last = a.lastWindowStart !== null ? repo.windowsBetween(a.lastWindowStart, a.lastWindowStart + 1, a.agent)[0] : undefined;
    return {
      agent: a.agent,
      active: a.active,
      quietStreak: a.quietStreak,
      alertActive: a.alertActive,
      band: a.lastBand,
      lastWindow: last ? {
        start: msToRfc3339(last.windowStart), end: msToRfc3339(last.windowEnd), status: last.status,
        reasons: last.reasons, externalFlows: last.externalFlows, flows: last.flows,
      } : null,
    };
  });
}

export function formatStatus(rows: readonly AgentStatus[]): string {
  if (rows.length === 0) return 'no agents in the pulse store yet\n';
  const header = ['AGENT', 'STREAK', 'ALERT', 'LAST WINDOW', 'STATUS', 'EXT FLOWS', 'BAND'];
  const body = rows.map((r) => [
    r.agent + (r.active ? '' : ' (removed)'),
    String(r.quietStreak),
    r.alertActive ? 'QUIET' : '-',
    r.lastWindow ? r.lastWindow.start.slice(0, 16) + 'Z' : '-',
    r.lastWindow ? r.lastWindow.status + (r.lastWindow.reasons.length ? ` (${r.lastWindow.reasons.join(',')})` : '') : '-',
    r.lastWindow ? String(r.lastWindow.externalFlows) : '-',
    r.band ? `${r.band.low.toFixed(1)}-${r.band.high.toFixed(1)}` : 'unarmed',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  return [header, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
