import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { DaemonWriter } from '../ledger/index.js';
import type { Sink } from '../pipeline/types.js';

/**
 * Every exported line into the signed daemon ledger (src/ledger, DaemonWriter
 * segments). The writer buffers and hashes synchronously and cheaply
 * (docs/ledger.md §9: ~280k appends/s), so there is no queue here; a writer
 * error is counted per line and logged once.
 */
export class LedgerSink implements Sink {
  readonly name = 'ledger';
  private written = 0;
  private dropped = 0;
  private warned = false;
  /** When appends started failing without a success since (ms epoch); null while healthy. */
  private failingSinceMs: number | null = null;

  constructor(readonly writer: DaemonWriter) {}

  write(_env: Envelope, line: string): void {
    try {
      this.writer.append(line);
      this.written++;
      this.failingSinceMs = null;
    } catch (err) {
      this.dropped++;
      this.failingSinceMs ??= Date.now();
      if (!this.warned) log.error({ err: (err as Error).message }, 'ledger append failed');
      this.warned = true;
    }
  }

  /** A checkpoint now (pulse window close); failures are logged, never thrown into the pipeline. */
  checkpoint(reason: 'window'): void {
    try {
      this.writer.checkpoint(reason);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'ledger checkpoint failed');
    }
  }

  updateCounters(counters: Record<string, number>, drops: Record<string, number>): void {
    try {
      this.writer.updateCounters(counters, drops);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'ledger counters update failed');
    }
  }

  /** How long the ledger has been failing (0 while healthy): past a bound the daemon stops petting the watchdog. */
  failingForMs(now = Date.now()): number {
    // the writer knows even when no line arrived since its disk failed
    return Math.max(this.failingSinceMs === null ? 0 : now - this.failingSinceMs, this.writer.failingForMs(now));
  }

  stats(): { written: number; dropped: number } {
    return { written: this.written, dropped: this.dropped };
  }

  async close(): Promise<void> {
    await this.writer.close({ written: this.written }, { ledger: this.dropped });
  }
}
