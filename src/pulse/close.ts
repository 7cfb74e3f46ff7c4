import type { Envelope } from '../events/envelope.js';
import { computeBand, outsideBand, type Band } from './band.js';
import { scoreBeacon } from './beacon.js';
import type { BeaconTracker, FlowBook } from './beacon-tracker.js';
import { pulseEvent, round3 } from './events.js';
import { checkContinuity, importRows, type ImportFault } from './importer.js';
import { thresholdsFor, type PulseOptions } from './options.js';
import type { AgentState, PulseRepo } from './repo.js';
import { BAND_METRICS, type AgentWindow, type WindowReason, type WindowRecord, type WindowStatus } from './window.js';

/**
 * Closing one window: turn the counters into records, then judge them —
 * first-seen destinations, quiet streak, congruence band, beacons, gap or
 * degraded — and import. Runs inside one transaction: either the window and
 * every consequence of it land in the store, or none do.
 */
export interface CloseInput {
  repo: PulseRepo;
  opts: PulseOptions;
  windowStart: number;
  windowEnd: number;
  status: WindowStatus;
  reasons: WindowReason[];
  drops: number;
  heartbeats: number;
  agents: readonly { agent: string; window: AgentWindow | undefined }[];
  tracker: BeaconTracker;
}

export interface CloseOutput {
  records: WindowRecord[];
  events: Envelope[];
  skips: ImportFault[];
  staged: FlowBook;
}

export function slotOf(windowStart: number, opts: PulseOptions): number {
  const inPeriod = ((windowStart % opts.periodMs) + opts.periodMs) % opts.periodMs;
  return Math.floor(inPeriod / opts.windowMs);
}

export function closeWindow(input: CloseInput): CloseOutput {
  const { repo, windowStart, windowEnd, status } = input;
  const span = { start: windowStart, end: windowEnd };
  const events: Envelope[] = [];
  const records = input.agents.map(({ agent, window: w }) => baseRecord(input, agent, w));
  const skips = checkContinuity(repo, records);
  const states = new Map<string, AgentState>();

  for (const [i, rec] of records.entries()) {
    const w = input.agents[i]!.window;
    const prior = repo.agentState(rec.agent);
    const state: AgentState = prior ?? { agent: rec.agent, active: true, quietStreak: 0, alertActive: false, lastWindowStart: null, lastWindowEnd: null, lastBand: null };

    for (const destination of w?.externalDestinations() ?? []) {
      if (repo.hasDestination(rec.agent, destination)) continue;
      const firstTs = w!.externalFlows.reduce((m, f) => (f.destination === destination && f.tsMs < m ? f.tsMs : m), Infinity);
      repo.addDestination(rec.agent, destination, firstTs);
      rec.firstSeen.push(destination);
      events.push(pulseEvent('pulse.first_seen', rec.agent, span, { 'witness.destination': destination }));
    }

    if (status !== 'ok') {
      events.push(pulseEvent(status === 'gap' ? 'pulse.gap' : 'pulse.degraded', rec.agent, span, {
        'witness.pulse.reasons': [...rec.reasons], 'witness.drops.window': rec.drops, 'witness.pulse.heartbeats': rec.heartbeats,
      }));
    }

    updateStreak(input, rec, state, events);
    if (status === 'ok') state.lastBand = judgeBands(input, rec, events) ?? state.lastBand;
    rec.quietStreak = state.quietStreak;
    rec.alertActive = state.alertActive;
    state.lastWindowStart = rec.windowStart;
    state.lastWindowEnd = rec.windowEnd;
    state.active = true;
    states.set(rec.agent, state);
  }

  importRows(repo, records);
  for (const s of states.values()) repo.saveAgent(s);
  const staged = judgeBeacons(input, events);
  return { records, events, skips, staged };
}

function baseRecord(input: CloseInput, agent: string, w: AgentWindow | undefined): WindowRecord {
  return {
    agent, windowStart: input.windowStart, windowEnd: input.windowEnd, slot: slotOf(input.windowStart, input.opts),
    status: input.status, reasons: [...input.reasons],
    flows: w?.flows ?? 0, failedFlows: w?.failedFlows ?? 0, externalFlows: w?.externalFlows.length ?? 0,
    uniqueDestinations: w?.destinations.size ?? 0, uniqueExternalDestinations: w?.externalDestinations().length ?? 0,
    firstSeen: [], dnsNames: [...(w?.dnsNames ?? [])].sort(), sniNames: [...(w?.sniNames ?? [])].sort(),
    bytes: w?.bytes ?? 0, llmProviders: w?.llmProviders() ?? [],
    execs: w?.execs ?? 0, fileWrites: w?.fileWrites ?? 0, sensitiveReads: w?.sensitiveReads ?? 0, findings: w?.findings ?? 0,
    drops: input.drops, heartbeats: input.heartbeats, quietStreak: 0, alertActive: false,
  };
}

/**
 * Only a fully watched window can lengthen the streak: silence in a gap or a
 * degraded window may be the sensor's, not the agent's. Activity seen in any
 * window is activity, so any window can reset it.
 */
function updateStreak(input: CloseInput, rec: WindowRecord, state: AgentState, events: Envelope[]): void {
  const t = thresholdsFor(input.opts, rec.agent);
  const span = { start: rec.windowStart, end: rec.windowEnd };
  const quiet = rec.externalFlows < t.quietThreshold;
  if (!quiet) state.quietStreak = 0;
  else if (rec.status === 'ok') state.quietStreak++;
  const attrs = { 'witness.pulse.streak': state.quietStreak, 'witness.pulse.quiet_threshold': t.quietThreshold, 'witness.pulse.quiet_windows': t.quietWindows, 'witness.pulse.external_flows': rec.externalFlows };
  if (!state.alertActive && state.quietStreak >= t.quietWindows) {
    state.alertActive = true;
    events.push(pulseEvent('pulse.alert', rec.agent, span, { ...attrs, 'witness.pulse.severity': 'soft', 'witness.pulse.kind': 'quiet_streak' }));
  } else if (state.alertActive && state.quietStreak === 0) {
    state.alertActive = false;
    events.push(pulseEvent('pulse.alert_cleared', rec.agent, span, { ...attrs, 'witness.pulse.kind': 'quiet_streak' }));
  }
}

/** Emits pulse.drift per metric outside its band; returns the external-flows band for status. */
function judgeBands(input: CloseInput, rec: WindowRecord, events: Envelope[]): Band | null {
  const { opts, repo } = input;
  const since = rec.windowStart - opts.bandMaxPeriods * opts.periodMs;
  const history = repo.slotHistory(rec.agent, rec.slot, since, rec.windowStart, opts.bandMaxPeriods);
  const params = { k: opts.bandK, floor: opts.bandFloor, floorRatio: opts.bandFloorRatio, minSamples: opts.bandMinPeriods };
  let external: Band | null = null;
  for (const [metric, field] of Object.entries(BAND_METRICS)) {
    const band = computeBand(history.map((h) => h[field]), params);
    if (!band) return null; // not armed: same history for every metric
    if (metric === 'external_flows') external = band;
    const value = rec[field];
    const direction = outsideBand(value, band);
    if (direction) {
      events.push(pulseEvent('pulse.drift', rec.agent, { start: rec.windowStart, end: rec.windowEnd }, {
        'witness.pulse.metric': metric, 'witness.pulse.value': value, 'witness.pulse.direction': direction,
        'witness.pulse.band.median': round3(band.median), 'witness.pulse.band.low': round3(band.low),
        'witness.pulse.band.high': round3(band.high), 'witness.pulse.band.samples': band.samples,
      }));
    }
  }
  return external;
}

/** Scores every pair with enough connections; emits once when a pair crosses the threshold. */
function judgeBeacons(input: CloseInput, events: Envelope[]): FlowBook {
  const { repo, opts, windowStart, windowEnd } = input;
  const added = input.agents.filter((a) => a.window).map((a) => ({ agent: a.agent, flows: a.window!.externalFlows }));
  const cutoff = windowEnd - opts.beaconWindowMs;
  const staged = input.tracker.stage(added, cutoff);
  repo.pruneFlows(cutoff);
  for (const a of added) repo.insertFlows(a.agent, a.flows);
  const active = repo.activeBeacons();
  for (const [key, pair] of staged) {
    const s = pair.flows.length >= opts.beaconMinConnections
      ? scoreBeacon(pair.flows.map((f) => f.tsMs), pair.flows.map((f) => f.bytes), windowEnd, opts.beaconWindowMs)
      : null;
    const isBeacon = s !== null && s.score >= opts.beaconThreshold;
    if (isBeacon && !active.has(key)) {
      repo.setBeacon(pair.agent, pair.destination, s.score, windowEnd);
      events.push(pulseEvent('pulse.beacon', pair.agent, { start: windowStart, end: windowEnd }, {
        'witness.destination': pair.destination, 'witness.pulse.score': round3(s.score),
        'witness.pulse.score.interval': round3(s.interval), 'witness.pulse.score.data_size': s.dataSize === null ? null : round3(s.dataSize),
        'witness.pulse.score.histogram': round3(s.histogram), 'witness.pulse.score.duration': round3(s.duration),
        'witness.pulse.connections': s.connections, 'witness.pulse.interval.median_s': round3(s.medianIntervalMs / 1000),
      }));
    } else if (!isBeacon && active.has(key)) {
      repo.setBeacon(pair.agent, pair.destination, null, windowEnd);
    }
  }
  for (const key of active) {
    if (!staged.has(key)) {
      const [agent, destination] = key.split('\u0000') as [string, string];
      repo.setBeacon(agent, destination, null, windowEnd);
    }
  }
  return staged;
}
