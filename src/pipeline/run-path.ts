import type { Envelope } from '../events/envelope.js';
import { ContextCompactor } from '../events/compact.js';
import { StdoutSink } from '../export/stdout-sink.js';
import { compactLine } from '../export/ndjson-line.js';
import type { Sink } from './types.js';
import type { SessionWriter } from '../ledger/index.js';
import { humanLine } from '../cli/format.js';
import { SinkFailures } from '../cli/sink-failures.js';

/** a sink whose close waits for its reader up to a timeout */
export type OutputSink = Sink & { close(timeoutMs?: number): Promise<void> };

export interface RunPathOptions {
  /** where NDJSON (or human lines) go: a file descriptor, or a sink of the caller's (the resident daemon's socket) */
  fd?: number;
  sink?: OutputSink;
  /** the session ledger; null with --no-ledger */
  ledger: SessionWriter | null;
  /** NDJSON lines (true) or human lines for a terminal */
  json: boolean;
}

/**
 * The per-event tail of `witness run`: count, compact (process context once
 * per key, docs/ndjson.md), serialise once, hand the same line to the session
 * ledger and the output. Its own module so bench/replay.mjs drives exactly
 * the code a user runs.
 */
export function runPath(opts: RunPathOptions) {
  const { ledger, json } = opts;
  // The shared exporter: a reader that stops reading costs lines here
  // (bounded, counted), never the kernel drain or the session ledger.
  const sink: OutputSink = opts.sink ?? new StdoutSink({ fd: opts.fd ?? 1 });
  const counts = new Map<string, number>();
  const compactor = new ContextCompactor();
  const sinkFailures = new SinkFailures(); // a failing sink is counted, never an uncaught exception in the addon callback
  const emit = (env: Envelope): void => {
    counts.set(env.event, (counts.get(env.event) ?? 0) + 1);
    const line = compactLine(compactor, env); // JSON.stringify(compactor.compact(env)), byte for byte
    if (ledger) sinkFailures.run('ledger', () => ledger.append(line));
    sinkFailures.run('output', () => sink.write(env, json ? line : humanLine(env, true)));
  };
  return {
    emit, counts, sink, compactor, sinkFailures,
    /** hands what the output buffered to the kernel now (a file's write is synchronous; a stream's is started) */
    flushOutput: (): void => { sink.flush?.().catch(() => {}); },
    /** waits for the reader (the sensor is closed by then: nothing upstream can suffer) */
    close: (timeoutMs = Number.POSITIVE_INFINITY): Promise<void> => sink.close(timeoutMs),
  };
}

export type RunPath = ReturnType<typeof runPath>;
