import { BoundedKeys, COMPACT, DEFAULT_MAX_KEYS, FULL, PROCESS_KEY } from '../events/compact.js';
import type { Envelope } from '../events/envelope.js';
import type { WholeLine } from '../export/whole-line.js';
import { plainRow, type PlainRow } from './events.js';
import { ROW_COMPACT, ROW_CONTEXT, ROW_WHOLE } from './event-contexts.js';

/**
 * The store sinks' rows (main thread): the line every sink shares, compact
 * where the file's is, so storing a record costs no serialisation of its
 * own. A compact line is stored as such only when its key's context record
 * went into this sink's queue; when the queue refused that record (full),
 * or the key was forgotten, the compact record is stored whole instead
 * (`whole.get()`), so a row never depends on a context the store may lack.
 */
export class StoreRows {
  /** keys whose context record went into the queue; as many as the compactor remembers (a forgotten key's rows are stored whole) */
  private readonly known: BoundedKeys<true>;

  constructor(maxKeys = DEFAULT_MAX_KEYS) {
    this.known = new BoundedKeys(maxKeys);
  }

  row(env: Envelope, line: string, whole?: WholeLine): PlainRow {
    if (whole === undefined) return plainRow(env, JSON.stringify(env));
    const d = whole.decision;
    if (d === COMPACT) {
      const key = env.attributes[PROCESS_KEY] as string;
      return this.known.has(key) ? plainRow(env, line, ROW_COMPACT, key) : plainRow(env, whole.get());
    }
    if (d === FULL) {
      // the line is the whole record (JSON.stringify(env)), context included
      const key = env.attributes[PROCESS_KEY] as string;
      this.known.set(key, true);
      return plainRow(env, line, ROW_CONTEXT, key);
    }
    return plainRow(env, line, ROW_WHOLE);
  }

  /** The sink refused `env` (its queue was full): a context record refused leaves its key's compact rows whole. */
  refused(env: Envelope, whole?: WholeLine): void {
    if (whole?.decision === FULL) this.known.delete(env.attributes[PROCESS_KEY] as string);
  }
}
