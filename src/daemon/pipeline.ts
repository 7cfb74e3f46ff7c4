import { ContextCompactor, WHOLE, type Decision } from '../events/compact.js';
import { compactLine } from '../export/ndjson-line.js';
import { WholeLine } from '../export/whole-line.js';
import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';
import type { PulseEngine } from '../pulse/engine.js';
import type { BootClock } from '../sensor/ndjson.js';
import { ProviderTable, type ProviderRule } from '../sensor/llm.js';
import { enrichThrough, NetDepth } from '../sensor/netdepth.js';
import type { TlsSessionsOptions } from '../sensor/tls-sessions.js';
import type { SensorEvent } from '../sensor/types.js';
import type { ReloadableEnricher } from './hooks.js';

export interface PipelineStats {
  /** sensor events handed to the enricher */
  received: number;
  /** envelopes that reached the sinks (events, findings, control, pulse) */
  emitted: number;
  enrichErrors: number;
  pulseErrors: number;
  sinks: Record<string, { written: number; dropped: number; queued?: number; queuedBytes?: number }>;
}

/**
 * SensorEvent → envelope → enricher → every sink, and into the pulse. The
 * JSON line (compact: process context once per process key) is built once
 * per envelope and shared by all sinks. Nothing here
 * waits: sinks queue (bounded) on their own, so the kernel drain that calls
 * `onSensorEvent` is never held up by a consumer.
 */
export class Pipeline {
  private received = 0;
  private emitted = 0;
  private enrichErrors = 0;
  private pulseErrors = 0;
  /** network depth (TLS hello, names on connects, llm.call), before attribution */
  readonly net: NetDepth;
  private readonly compactor = new ContextCompactor();
  /** the whole record's line for the sinks that keep it (the store), built at most once and mostly reused */
  readonly whole = new WholeLine();
  private readonly decided: { decision: Decision } = { decision: WHOLE };

  constructor(
    private enricher: ReloadableEnricher,
    readonly sinks: readonly Sink[],
    private readonly pulse: PulseEngine | null,
    private readonly clock: () => BootClock,
    providers: readonly ProviderRule[] = [],
    tls: TlsSessionsOptions = {},
  ) {
    this.net = new NetDepth({ providers: new ProviderTable(providers), tls });
  }

  get currentEnricher(): ReloadableEnricher {
    return this.enricher;
  }

  onSensorEvent(ev: SensorEvent): void {
    this.received++;
    let out: Envelope[];
    const plain: Envelope[] = [];
    try {
      out = enrichThrough(this.net, ev, this.clock(), (e, env) => {
        if (env) plain.push(env);
        return this.enricher.enrich(e, env);
      });
    } catch (err) {
      // An attribution bug must not cost the event: export it unattributed.
      if (this.enrichErrors++ === 0) log.error({ err: (err as Error).message }, 'enricher failed; exporting unattributed');
      out = plain;
    }
    for (const e of out) this.emit(e);
  }

  /** Any envelope (event, finding, control record) to the sinks and the pulse. */
  emit(env: Envelope): void {
    this.toSinks(env);
    if (!this.pulse) return;
    try {
      for (const p of this.pulse.ingest(env)) this.toSinks(p);
    } catch (err) {
      if (this.pulseErrors++ === 0) log.error({ err: (err as Error).message }, 'pulse engine failed on an event');
    }
  }

  /** Closes pulse windows the clock has passed (no event needed). */
  tick(nowMs?: number): void {
    if (!this.pulse) return;
    try {
      for (const p of this.pulse.tick(nowMs)) this.toSinks(p);
    } catch (err) {
      if (this.pulseErrors++ === 0) log.error({ err: (err as Error).message }, 'pulse tick failed');
    }
  }

  private toSinks(env: Envelope): void {
    this.emitted++;
    // Lines carry each process's context once (src/events/compact.ts); sinks
    // that need the whole record (OTLP, the store) read it from `env`.
    const line = compactLine(this.compactor, env, this.decided); // JSON.stringify(compactor.compact(env)), byte for byte
    this.whole.set(env, line, this.decided.decision);
    for (const s of this.sinks) s.write(env, line, this.whole);
  }

  stats(): PipelineStats {
    const sinks: PipelineStats['sinks'] = {};
    for (const s of this.sinks) sinks[s.name] = s.stats();
    return { received: this.received, emitted: this.emitted, enrichErrors: this.enrichErrors, pulseErrors: this.pulseErrors, sinks };
  }

  /** Flat heartbeat attributes for the per-stage counts. */
  heartbeatAttributes(): Record<string, number> {
    const s = this.stats();
    const a: Record<string, number> = {
      'witness.pipeline.received': s.received,
      'witness.pipeline.emitted': s.emitted,
      'witness.pipeline.enrich_errors': s.enrichErrors,
      'witness.pipeline.pulse_errors': s.pulseErrors,
      ...this.net.heartbeatAttributes(),
      ...this.enricher.heartbeatAttributes?.(),
    };
    for (const [name, st] of Object.entries(s.sinks)) {
      a[`witness.export.${name}.written`] = st.written;
      a[`witness.export.${name}.dropped`] = st.dropped;
      a[`witness.export.${name}.queued`] = st.queued ?? 0;
      if (st.queuedBytes !== undefined) a[`witness.export.${name}.queued_bytes`] = st.queuedBytes;
    }
    for (const sink of this.sinks) if (sink.heartbeatAttributes) Object.assign(a, sink.heartbeatAttributes());
    return a;
  }
}
