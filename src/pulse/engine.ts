import type { Envelope } from '../events/envelope.js';
import { timeMsOf } from '../store/events.js';
import { parseRfc3339Nanos } from '../events/envelope.js';
import { WitnessError, isWitnessError } from '../errors.js';
import { log } from '../log.js';
import type { Store } from '../store/db.js';
import { hostAddresses, normalizeAddress } from './addresses.js';
import { BeaconTracker } from './beacon-tracker.js';
import { closeWindow } from './close.js';
import { pulseEvent } from './events.js';
import { ImportAbort } from './importer.js';
import { resolvePulseOptions, type PulseOptions, type PulseOptionsInput } from './options.js';
import { PulseRepo } from './repo.js';
import { AgentWindow, ObserverWindow, agentOf, isAgentActivity, type WindowRecord } from './window.js';

/**
 * The pulse: fed events with `ingest`, told the time with `tick`, it closes
 * fixed windows on the clock and returns the pulse events they raise. The
 * same engine runs live (daemon ticks with the wall clock) and offline
 * (`pulse replay` ticks with the events' own timestamps). All state that must
 * survive a restart lives in the store; only the open window is in memory.
 */
export interface PulseEngineInit {
  store: Store;
  options?: PulseOptionsInput;
  /** Injectable clock (epoch ms) for `tick()` without an argument. */
  clock?: () => number;
  /** Called with every pulse event raised, in order. */
  sink?: (event: Envelope) => void;
  /** Called with the records of every window closed. */
  onWindow?: (records: readonly WindowRecord[]) => void;
}

const META = { open: 'open_window_start', beat: 'last_heartbeat_ms', drops: 'drops_total_baseline', windowMs: 'window_ms' } as const;

export class PulseEngine {
  readonly options: PulseOptions;
  readonly repo: PulseRepo;
  private readonly clock: () => number;
  private readonly own: Set<string>;
  private readonly tracker = new BeaconTracker();
  private readonly agents = new Set<string>();
  private windows = new Map<string, AgentWindow>();
  private observer: ObserverWindow;
  private openStart: number | null;
  private dropsBaseline: number | null;
  private newestEventMs = -Infinity;
  private newestTickMs = -Infinity;

  constructor(private readonly init: PulseEngineInit) {
    this.options = resolvePulseOptions(init.options);
    this.repo = new PulseRepo(init.store);
    this.clock = init.clock ?? Date.now;
    this.own = new Set((this.options.hostAddresses ?? hostAddresses()).map(normalizeAddress));
    const storedWindow = this.repo.getMetaNumber(META.windowMs);
    if (storedWindow !== null && storedWindow !== this.options.windowMs) {
      throw new WitnessError('E_PULSE', `store was built with ${storedWindow} ms windows, not ${this.options.windowMs} ms; use another store`, { file: init.store.path, field: 'pulse_meta.window_ms' });
    }
    this.repo.setMeta(META.windowMs, this.options.windowMs);
    this.openStart = this.repo.getMetaNumber(META.open);
    this.dropsBaseline = this.repo.getMetaNumber(META.drops);
    for (const a of this.repo.listAgents()) if (a.active) this.agents.add(a.agent);
    for (const name of Object.keys(this.options.perAgent)) this.agents.add(name);
    this.observer = new ObserverWindow(this.openStart ?? 0, this.repo.getMetaNumber(META.beat));
    this.tracker.load(this.repo, (this.openStart ?? 0) - this.options.beaconWindowMs);
  }

  /** Start of the window currently collecting, or null before the first event/tick. */
  get openWindowStart(): number | null {
    return this.openStart;
  }

  get knownAgents(): string[] {
    return [...this.agents].sort();
  }

  /** Starts tracking an agent from the open window on (e.g. added to the manifest). */
  addAgent(name: string): void {
    this.agents.add(name);
  }

  /**
   * Stops tracking an agent. Its history stays; if it comes back, its next
   * window follows a hole that is intentional, so continuity restarts.
   */
  removeAgent(name: string): void {
    this.agents.delete(name);
    this.windows.delete(name);
    const s = this.repo.agentState(name);
    if (s) this.repo.saveAgent({ ...s, active: false, lastWindowEnd: null, lastWindowStart: null });
  }

  ingest(env: Envelope): Envelope[] {
    let t: number;
    try {
      // every record passes here: the store's parse, cached per second (~0.15 us against ~0.6 for
      // the BigInt parse); a time it cannot read is NaN or throws, both the typed error below
      t = timeMsOf(env.time);
      if (!Number.isFinite(t)) throw new RangeError(`not RFC 3339 with ns: ${env.time}`);
    } catch (cause) {
      throw new WitnessError('E_PULSE', `event time '${env.time}' is not RFC 3339 with nanoseconds`, { field: 'time', cause });
    }
    const out = this.advanceTo(t);
    if (t < this.newestEventMs - this.options.reorderToleranceMs) {
      // The clock went back. We cannot reopen a closed window, so the event
      // counts in the open one and the window says it was disturbed.
      this.observer.clockBackwards++;
      log.warn({ event: env.event, time: env.time }, 'pulse: event older than the newest seen; clock went backwards');
    }
    this.newestEventMs = Math.max(this.newestEventMs, t);
    this.dispatch(env, t);
    return out;
  }

  /** Closes every window that ended at or before `now`. */
  tick(now: number = this.clock()): Envelope[] {
    if (now < this.newestTickMs - this.options.reorderToleranceMs) {
      this.observer.clockBackwards++;
      log.warn({ now, newest: this.newestTickMs }, 'pulse: tick went backwards; windows stay open');
      return [];
    }
    this.newestTickMs = Math.max(this.newestTickMs, now);
    return this.advanceTo(now);
  }

  private align(t: number): number {
    return Math.floor(t / this.options.windowMs) * this.options.windowMs;
  }

  private advanceTo(t: number): Envelope[] {
    const w = this.options.windowMs;
    if (this.openStart === null) {
      this.openStart = this.align(t);
      this.observer = new ObserverWindow(this.openStart, this.observer.lastBeat);
      this.repo.setMeta(META.open, this.openStart);
      return [];
    }
    const out: Envelope[] = [];
    const target = this.align(t);
    if ((target - this.openStart) / w > this.options.maxCatchUpWindows) {
      // A jump of weeks (clock set forward, host suspended): close what we
      // have, then report the hole as one gap rather than thousands of rows.
      out.push(...this.closeOpen(this.openStart + w));
      this.observer.clockJumps++;
      out.push(...this.closeOpen(target));
    }
    while (this.openStart + w <= t) out.push(...this.closeOpen(this.openStart + w));
    return out;
  }

  private closeOpen(end: number): Envelope[] {
    const start = this.openStart!;
    const { status, reasons } = this.observer.assess(end, this.options.maxSilenceMs);
    const names = [...this.agents].sort();
    let events: Envelope[] = [];
    let records: WindowRecord[] = [];
    try {
      this.repo.transaction(() => {
        if (names.length > 0) {
          const r = closeWindow({
            repo: this.repo, opts: this.options, windowStart: start, windowEnd: end, status, reasons,
            drops: this.observer.drops, heartbeats: this.observer.heartbeats,
            agents: names.map((agent) => ({ agent, window: this.windows.get(agent) })), tracker: this.tracker,
          });
          events = [...r.skips.map((f) => faultEvent(f.reason, f.agent, start, end, f.detail)), ...r.events];
          records = r.records;
          this.tracker.commit(r.staged);
        } else if (status !== 'ok') {
          // No agent yet, but the observer's silence is still worth saying.
          events = [pulseEvent(status === 'gap' ? 'pulse.gap' : 'pulse.degraded', 'unattributed', { start, end }, { 'witness.pulse.reasons': reasons })];
        }
        for (const e of events) this.store(e, start);
        this.saveMeta(end);
      });
    } catch (err) {
      // Rolled back: the store keeps what it had; say so and move on rather
      // than stall the pulse on one bad window. A corrupt store row is
      // reported (every window it touches) but does not stop observation.
      if (err instanceof ImportAbort) {
        events = err.faults.map((f) => faultEvent(f.reason, f.agent, f.windowStart, f.windowEnd, f.detail));
      } else if (isWitnessError(err, 'E_STORE')) {
        log.error({ err: err.message }, 'pulse: corrupt store row; window not imported');
        events = (names.length > 0 ? names : ['unattributed']).map((agent) => faultEvent('corrupt_store', agent, start, end, err.message));
      } else {
        throw err;
      }
      records = [];
      this.repo.transaction(() => {
        for (const e of events) this.store(e, start);
        this.saveMeta(end);
      });
    }
    this.openStart = end;
    this.windows = new Map();
    this.observer = new ObserverWindow(end, this.observer.lastBeat);
    if (records.length > 0) this.init.onWindow?.(records);
    for (const e of events) this.init.sink?.(e);
    return events;
  }

  private saveMeta(openStart: number): void {
    this.repo.setMeta(META.open, openStart);
    this.repo.setMeta(META.beat, this.observer.lastBeat);
    this.repo.setMeta(META.drops, this.dropsBaseline);
  }

  private store(e: Envelope, windowStart: number): void {
    this.repo.insertEvent({
      timeMs: Number(parseRfc3339Nanos(e.time) / 1_000_000n), event: e.event,
      agent: String(e.attributes['witness.agent']), windowStart, attributes: e.attributes,
    });
  }

  private dispatch(env: Envelope, t: number): void {
    const a = env.attributes;
    switch (env.event) {
      case 'sensor.heartbeat':
      case 'sensor.drops':
        if (env.event === 'sensor.heartbeat') this.observer.heartbeat(t);
        this.countDrops(a['witness.drops.total']);
        return;
      case 'sensor.restart':
        this.observer.restarts++;
        this.dropsBaseline = 0; // the new sensor counts drops from zero
        return;
      case 'sensor.start':
        this.dropsBaseline = 0;
        return;
    }
    if (!isAgentActivity(env.event)) return;
    const agent = agentOf(a);
    this.agents.add(agent);
    let w = this.windows.get(agent);
    if (!w) this.windows.set(agent, (w = new AgentWindow(this.own)));
    w.add(env, t);
  }

  private countDrops(value: unknown): void {
    const total = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : null;
    if (total === null) return;
    if (this.dropsBaseline !== null && total < this.dropsBaseline) {
      // Counter went down without a restart event: the sensor restarted anyway.
      this.observer.restarts++;
      this.dropsBaseline = 0;
    }
    this.observer.drops += total - (this.dropsBaseline ?? total);
    this.dropsBaseline = total;
  }
}

function faultEvent(reason: string, agent: string, start: number, end: number, detail: string): Envelope {
  return pulseEvent('pulse.fault', agent, { start, end }, { 'witness.pulse.fault': reason, 'witness.pulse.detail': detail });
}
