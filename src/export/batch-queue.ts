/**
 * A bounded FIFO of NDJSON lines (or envelopes) drained by one asynchronous consumer at a
 * time. `push` never blocks and never waits: past `maxLines` lines, or past
 * `maxQueueBytes` of line text waiting, it refuses the line and counts it as
 * dropped, so a stalled consumer (a full disk, a dead collector) costs events
 * at this stage only — never the kernel drain — and memory stays bounded
 * whatever the lines' size (a count alone let 100k long lines hold ~100 MiB).
 *
 * Subclasses implement `deliver(lines)`, which resolves once the batch is
 * durable downstream (or has been given up on and counted by the subclass).
 */
export interface QueueStats {
  written: number;
  dropped: number;
  queued: number;
  /** text waiting (queued and in flight), in UTF-16 units of the NDJSON lines: ~bytes for ASCII JSON */
  queuedBytes: number;
}

/** Default byte bound of a queue (the line count bound applies too). */
export const DEFAULT_QUEUE_BYTES = 32 << 20;

export abstract class BatchQueue<T = string> {
  protected lines: T[] = [];
  protected written = 0;
  protected dropped = 0;
  private inFlight = 0;
  /** size of everything in `lines` plus the batch in flight */
  private queueBytes = 0;
  private inFlightBytes = 0;
  private draining: Promise<void> | null = null;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];
  protected closing = false;

  constructor(
    protected readonly maxLines: number,
    protected readonly maxBatch: number,
    protected readonly maxQueueBytes: number = DEFAULT_QUEUE_BYTES,
  ) {}

  /** What an item weighs against `maxQueueBytes` (a string: its length; subclasses queuing objects say what they hold). Must not change while queued. */
  protected sizeOf(item: T): number {
    return typeof item === 'string' ? item.length : 0;
  }

  /** True when no line could be queued now (closed, or at the line bound): a writer can skip building one. */
  protected full(): boolean {
    return this.closing || this.lines.length >= this.maxLines;
  }

  /** Counts a line refused without building it (after `full()`). */
  protected refuse(): void {
    this.dropped++;
  }

  /** Queues a line; false (and counted) when the queue is full (lines or bytes) or closed. */
  push(line: T): boolean {
    const size = this.sizeOf(line);
    if (this.closing || this.lines.length >= this.maxLines || this.queueBytes + size > this.maxQueueBytes) {
      this.dropped++;
      return false;
    }
    this.lines.push(line);
    this.queueBytes += size;
    if (!this.scheduled && this.draining === null) {
      this.scheduled = true;
      // Batch everything one kernel batch decodes into a single delivery.
      setImmediate(() => { this.scheduled = false; this.kick(); });
    }
    return true;
  }

  stats(): QueueStats {
    return { written: this.written, dropped: this.dropped, queued: this.lines.length + this.inFlight, queuedBytes: this.queueBytes };
  }

  /** Starts draining if idle. Subclasses call it when a backoff timer expires. */
  protected kick(): void {
    if (this.draining !== null || this.lines.length === 0 || !this.ready()) {
      if (this.draining === null && (this.lines.length === 0 || this.closing)) this.wakeIdle();
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = null;
      if (this.lines.length > 0 && this.ready()) this.kick();
      else this.wakeIdle();
    });
  }

  private async drain(): Promise<void> {
    while (this.lines.length > 0 && this.ready()) {
      const batch = this.lines.splice(0, this.maxBatch);
      let size = 0;
      for (const item of batch) size += this.sizeOf(item);
      this.inFlight = batch.length;
      this.inFlightBytes = size;
      try {
        await this.deliver(batch);
      } finally {
        this.inFlight = 0;
        this.inFlightBytes = 0;
        this.queueBytes -= size;
      }
    }
  }

  /** False while the consumer is backing off; `kick()` again when it is ready. */
  protected ready(): boolean {
    return true;
  }

  protected abstract deliver(lines: T[]): Promise<void>;

  /** Puts a batch that failed back at the head of the queue, dropping what no longer fits. */
  protected requeue(batch: T[]): void {
    const room = Math.max(0, this.maxLines - this.lines.length);
    let kept = batch.length <= room ? batch : batch.slice(batch.length - room);
    // the batch's bytes are released when its delivery returns; what is put back weighs again, within the byte bound
    let roomBytes = this.maxQueueBytes - (this.queueBytes - this.inFlightBytes);
    let from = kept.length;
    while (from > 0 && roomBytes - this.sizeOf(kept[from - 1]!) >= 0) roomBytes -= this.sizeOf(kept[--from]!);
    kept = kept.slice(from);
    for (const item of kept) this.queueBytes += this.sizeOf(item);
    this.dropped += batch.length - kept.length;
    this.lines = kept.concat(this.lines);
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when the queue is empty and nothing is in flight, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<boolean> {
    const isIdle = (): boolean => this.lines.length === 0 && this.draining === null;
    if (isIdle()) return true;
    this.kick();
    const deadline = Date.now() + timeoutMs;
    while (!isIdle() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(50, Math.max(1, deadline - Date.now())));
        this.idleWaiters.push(() => { clearTimeout(t); resolve(); });
      });
      this.kick();
    }
    return isIdle();
  }

  /** Stops taking lines; whatever could not be delivered by `timeoutMs` is counted as dropped. */
  protected async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    await this.drained(timeoutMs);
    this.dropped += this.lines.length;
    for (const item of this.lines) this.queueBytes -= this.sizeOf(item);
    this.lines = [];
  }
}
