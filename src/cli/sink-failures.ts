import { log } from '../log.js';

/**
 * `witness run` hands every event to its sinks (session ledger, output) from
 * inside the sensor's callback: an exception there would escape into the
 * addon and kill the witness while the agent runs on. Each sink call goes
 * through here instead: a failure is counted per sink, logged once, and
 * reported in the summary line and in session.json's drops
 * (`sink.<name>.failed`); the run continues.
 */
export class SinkFailures {
  private readonly failed = new Map<string, { count: number; first: string }>();

  run(sink: string, work: () => void): void {
    try {
      work();
    } catch (err) {
      const f = this.failed.get(sink);
      if (f) { f.count++; return; }
      const first = (err as Error).message;
      this.failed.set(sink, { count: 1, first });
      log.error({ sink, err: first }, 'sink failed; counting its failures and carrying on');
    }
  }

  /** `sink.<name>.failed` counts, for session.json's drops. */
  drops(): Record<string, number> {
    return Object.fromEntries([...this.failed].map(([k, v]) => [`sink.${k}.failed`, v.count]));
  }

  /** One summary clause per failing sink, or '' when none failed. */
  summary(): string {
    return [...this.failed].map(([k, v]) => `witness: sink ${k} failed ${v.count} times (first: ${v.first})\n`).join('');
  }
}
