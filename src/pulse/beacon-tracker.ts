import type { PulseRepo } from './repo.js';
import { beaconKey } from './repo.js';
import type { ExternalFlow } from './window.js';

/**
 * External connection instants per (agent, destination) over the sliding
 * beacon span. Changes are staged and only committed with the window's
 * transaction, so a rolled-back import does not leave phantom flows behind.
 */
export interface PairFlows {
  agent: string;
  destination: string;
  flows: ExternalFlow[];
}

export type FlowBook = Map<string, PairFlows>;

export class BeaconTracker {
  private book: FlowBook = new Map();

  load(repo: PulseRepo, since: number): void {
    this.book = new Map();
    for (const { agent, flow } of repo.loadFlows(since)) pushFlow(this.book, agent, flow);
  }

  /** A copy with the window's flows added and anything before `cutoff` dropped. */
  stage(added: readonly { agent: string; flows: readonly ExternalFlow[] }[], cutoff: number): FlowBook {
    const next: FlowBook = new Map();
    for (const [key, pair] of this.book) {
      const kept = pair.flows.filter((f) => f.tsMs >= cutoff);
      if (kept.length > 0) next.set(key, { ...pair, flows: kept });
    }
    for (const { agent, flows } of added) for (const f of flows) if (f.tsMs >= cutoff) pushFlow(next, agent, f);
    return next;
  }

  commit(staged: FlowBook): void {
    this.book = staged;
  }
}

function pushFlow(book: FlowBook, agent: string, flow: ExternalFlow): void {
  const key = beaconKey(agent, flow.destination);
  const pair = book.get(key);
  if (pair) pair.flows.push(flow);
  else book.set(key, { agent, destination: flow.destination, flows: [flow] });
}
