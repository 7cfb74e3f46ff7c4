import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * The daemon's own memory and event-loop health for the heartbeat. A loop
 * held for a second is a second the kernel drain does not run: the ring and
 * every sink queue fill behind it, so the longest hold since the last beat is
 * what explains a burst of drops (one store retention pass once held it for
 * 17 s at 50k events/s). Memory is split the way it grows: the V8 heap,
 * buffers outside it (kernel batches, file writes) and the rest of the RSS
 * (SQLite, malloc).
 */
export class DaemonHealth {
  private readonly delay: IntervalHistogram;

  constructor() {
    // 20 ms resolution: the timer costs nothing measurable, and a hold shorter than that drops nothing
    this.delay = monitorEventLoopDelay({ resolution: 20 });
    this.delay.enable();
  }

  /** Heartbeat attributes; the loop-delay figures cover the time since the previous call. */
  heartbeatAttributes(): Record<string, number> {
    const m = process.memoryUsage();
    const a = {
      'witness.daemon.rss_bytes': m.rss,
      'witness.daemon.heap_used_bytes': m.heapUsed,
      'witness.daemon.heap_total_bytes': m.heapTotal,
      'witness.daemon.external_bytes': m.external,
      'witness.daemon.array_buffers_bytes': m.arrayBuffers,
      // the histogram reports ns; a count of 0 means no sample yet (its max is then 0)
      'witness.daemon.loop_delay_max_ms': Math.round(this.delay.max / 1e6),
      'witness.daemon.loop_delay_p99_ms': Math.round(this.delay.percentile(99) / 1e6),
    };
    this.delay.reset();
    return a;
  }

  close(): void {
    this.delay.disable();
  }
}
