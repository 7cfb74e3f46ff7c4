import { COMPACT, WHOLE, type Decision } from '../events/compact.js';
import type { Envelope } from '../events/envelope.js';

/**
 * JSON.stringify(env) for the sinks that keep whole records (the store),
 * beside the compact line the file sinks get, without serialising every
 * record twice: at 50k records/s host-wide the store's JSON.stringify was
 * the largest single cost of the daemon's event loop (~9 % of its samples,
 * and the garbage behind a good part of its scavenges).
 *
 * A compact record's line is `{"time":…` + a tail that holds everything but
 * the process context; its context is, by the compactor's decision, equal
 * to the last context record of its process key. So two compact records in
 * a row with the same tail have the same whole record after the time, and
 * the second's whole line is its time + the first's whole tail. Any record
 * that is not compact (a context record: its key's context may have
 * changed; a finding; a control record) forgets the remembered tail, so a
 * tail is only ever reused across one run of compact records, during which
 * no key's context can change. Lazy: nothing is built unless a sink asks.
 */
export class WholeLine {
  private env: Envelope | null = null;
  private line = '';
  /** the compactor's decision for the current record (the store keeps compact lines: src/store/store-rows.ts) */
  decision: Decision = WHOLE;
  private text: string | null = null;
  private compactTail = '';
  private wholeTail: string | null = null;
  /** whole lines built from the remembered tail / by JSON.stringify (the bench and tests read these) */
  reused = 0;
  serialised = 0;

  /** The record the pipeline is writing now, its line, and the compactor's decision for it. */
  set(env: Envelope, line: string, decision: Decision): void {
    this.env = env;
    this.line = line;
    this.decision = decision;
    this.text = null;
    if (decision !== COMPACT) this.wholeTail = null;
  }

  /** JSON.stringify of the current record, byte for byte. */
  get(): string {
    if (this.text !== null) return this.text;
    const env = this.env!;
    const head = `{"time":${JSON.stringify(env.time)}`;
    if (this.decision === COMPACT && this.line.startsWith(head)) {
      const tail = this.line.slice(head.length);
      if (this.wholeTail !== null && tail === this.compactTail) {
        this.reused++;
        return (this.text = head + this.wholeTail);
      }
      const whole = this.serialise(env);
      if (whole.startsWith(head)) {
        this.compactTail = tail;
        this.wholeTail = whole.slice(head.length);
      }
      return (this.text = whole);
    }
    return (this.text = this.serialise(env));
  }

  private serialise(env: Envelope): string {
    this.serialised++;
    return JSON.stringify(env);
  }
}
