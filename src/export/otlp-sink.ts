import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';
import { BatchQueue, type QueueStats } from './batch-queue.js';
import { exportRequest, resourceAttributes, toLogRecord, type KeyValue } from './otlp-map.js';

export interface OtlpSinkOptions {
  /** Collector base URL (`http://host:4318`) or the full `/v1/logs` URL. */
  endpoint: string;
  headers?: Record<string, string>;
  /** Envelopes waiting for the collector before new ones are dropped (default 50 000). */
  maxQueued?: number;
  /** Log records per request (default 512). */
  batchSize?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** First retry delay, doubled per failure up to `maxBackoffMs` (defaults 500 ms, 30 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Extra resource attributes (strings). */
  resource?: Record<string, string>;
}

/** Statuses the OTLP/HTTP spec says to retry; every other failure status is permanent. */
const RETRYABLE = new Set([429, 502, 503, 504]);

export function logsUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/logs') ? base : `${base}/v1/logs`;
}

/**
 * OTLP/HTTP JSON logs exporter. Envelopes wait in a bounded queue; a batch
 * the collector did not take (connection refused, timeout, 429/502/503/504)
 * goes back to the head of the queue and is retried with exponential
 * backoff (honouring Retry-After), so a collector that goes away and comes
 * back loses nothing unless the queue overflowed meanwhile — and that loss
 * is counted in `dropped`. Batches the collector rejects as malformed (other
 * 4xx) are counted in `dropped` too, never retried forever.
 */
export class OtlpSink extends BatchQueue<Envelope> implements Sink {
  readonly name = 'otlp';
  readonly url: string;
  private readonly resource: KeyValue[];
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private backoffMs = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private requests = 0;

  constructor(opts: OtlpSinkOptions) {
    super(opts.maxQueued ?? 50_000, opts.batchSize ?? 512);
    this.url = logsUrl(opts.endpoint);
    this.resource = resourceAttributes(opts.resource);
    this.headers = { 'content-type': 'application/json', ...opts.headers };
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.initialBackoffMs = opts.initialBackoffMs ?? 500;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
  }

  write(env: Envelope, _line: string): void {
    this.push(env);
  }

  protected override ready(): boolean {
    return Date.now() >= this.retryAt;
  }

  protected async deliver(batch: Envelope[]): Promise<void> {
    const observed = BigInt(Date.now()) * 1_000_000n;
    const body = exportRequest(this.resource, batch.map((e) => toLogRecord(e, observed)));
    this.requests++;
    let status = 0;
    let retryAfterMs: number | null = null;
    let reply = '';
    try {
      const res = await fetch(this.url, { method: 'POST', headers: this.headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      status = res.status;
      retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      reply = await res.text();
    } catch (err) {
      this.retryLater(batch, null, (err as Error).message);
      return;
    }
    if (status >= 200 && status < 300) {
      const rejected = Math.min(batch.length, rejectedCount(reply));
      this.written += batch.length - rejected;
      this.dropped += rejected;
      this.backoffMs = 0;
      return;
    }
    if (RETRYABLE.has(status)) {
      this.retryLater(batch, retryAfterMs, `HTTP ${status}`);
      return;
    }
    this.dropped += batch.length;
    log.warn({ url: this.url, status, reply: reply.slice(0, 200) }, 'OTLP collector rejected a batch; dropped');
  }

  private retryLater(batch: Envelope[], retryAfterMs: number | null, why: string): void {
    this.failures++;
    if (this.closing) {
      this.dropped += batch.length;
      return;
    }
    this.requeue(batch);
    this.backoffMs = this.backoffMs === 0 ? this.initialBackoffMs : Math.min(this.maxBackoffMs, this.backoffMs * 2);
    // jitter ±20% so many daemons restarting together do not retry in step
    const delay = Math.max(retryAfterMs ?? 0, Math.round(this.backoffMs * (0.8 + Math.random() * 0.4)));
    this.retryAt = Date.now() + delay;
    if (this.failures === 1 || this.backoffMs === this.maxBackoffMs) log.warn({ url: this.url, why, retryInMs: delay }, 'OTLP export failed; will retry');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // The timer firing is the end of the backoff. (Comparing Date.now() with
    // retryAt instead can find it a millisecond short: timers run on the
    // monotonic clock, and a not-ready kick would leave nothing to wake us.)
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.retryAt = 0; this.kick(); }, delay);
    this.retryTimer.unref();
  }

  override stats(): QueueStats & { failures: number; requests: number } {
    return { ...super.stats(), failures: this.failures, requests: this.requests };
  }

  async flush(timeoutMs = 5000): Promise<void> {
    await this.drained(timeoutMs);
  }

  async close(timeoutMs = 5000): Promise<void> {
    // A collector in backoff gets one more immediate chance before the deadline.
    this.retryAt = 0;
    await this.shutdown(timeoutMs);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }
}

function parseRetryAfter(value: string | null): number | null {
  if (value === null) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 300_000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.min(at - Date.now(), 300_000));
}

/** `partialSuccess.rejectedLogRecords` of an ExportLogsServiceResponse (int64: may be a string). */
function rejectedCount(reply: string): number {
  if (reply === '') return 0;
  try {
    const parsed = JSON.parse(reply) as { partialSuccess?: { rejectedLogRecords?: string | number } };
    const n = Number(parsed.partialSuccess?.rejectedLogRecords ?? 0);
    return Number.isInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}
