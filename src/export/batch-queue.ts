/**
 * A bounded FIFO of NDJSON lines (or envelopes) drained by one asynchronous consumer at a
 * time. `push` never blocks and never waits: past `maxLines` it refuses the
 * line and counts it as dropped, so a stalled consumer (a full disk, a dead
 * collector) costs events at this stage only — never the kernel drain.
 *
 * Subclasses implement `deliver(lines)`, which resolves once the batch is
 * durable downstream (or has been given up on and counted by the subclass).
 */
export interface QueueStats {
  written: number;
  dropped: number;
  queued: number;
}

export abstract class BatchQueue<T = string> {
  protected lines: T[] = [];
  protected written = 0;
  protected dropped = 0;
  private inFlight = 0;
  private draining: Promise<void> | null = null;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];
  protected closing = false;

  constructor(protected readonly maxLines: number, protected readonly maxBatch: number) {}

  /** Queues a line; false (and counted) when the queue is full or closed. */
  push(line: T): boolean {
    if (this.closing || this.lines.length >= this.maxLines) {
      this.dropped++;
      return false;
    }
    this.lines.push(line);
    if (!this.scheduled && this.draining === null) {
      this.scheduled = true;
      // Batch everything one kernel batch decodes into a single delivery.
      setImmediate(() => { this.scheduled = false; this.kick(); });
    }
    return true;
  }

  stats(): QueueStats {
    return { written: this.written, dropped: this.dropped, queued: this.lines.length + this.inFlight };
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
      this.inFlight = batch.length;
      try {
        await this.deliver(batch);
      } finally {
        this.inFlight = 0;
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
    const kept = batch.length <= room ? batch : batch.slice(batch.length - room);
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
    this.lines = [];
  }
}
