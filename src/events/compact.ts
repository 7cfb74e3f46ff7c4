import type { AttributeValue, Attributes, Envelope } from './envelope.js';

/**
 * Small records (docs/ndjson.md, "Process context and compact records").
 *
 * Most of a full record is the process it came from: who runs it, which
 * executable, which cgroup, its ancestors. That context changes rarely, so it
 * is written once per process key — on the key's first record (its
 * process.exec, or the first record of a process met mid-life) and again
 * whenever any of it changes — and left out of the records in between. Every
 * record keeps `process.pid`, `witness.process.key`, `witness.agent`, the
 * scope ids and its own fields, so filters never need the join.
 *
 * The split is by key name, not by event kind: a kind added later is
 * compacted the same way without changes here. `ContextJoiner` is the exact
 * inverse over a stream in order (tests compare it with the full records).
 */

export const PROCESS_KEY = 'witness.process.key';

/**
 * Process context: omitted from a compact record when equal to the last
 * context record of the same key. The first four are kernel header facts
 * (they can change mid-life: setuid, prctl, a cgroup move); when one does,
 * the record carrying the change is a full context record again.
 */
export const CONTEXT_KEYS: readonly string[] = [
  'process.user.id', 'witness.gid', 'process.command', 'process.linux.cgroup',
  'process.executable.path', 'process.user.name', 'witness.process.parent_chain', 'witness.cgroup.path',
  'container.id', 'container.runtime', 'k8s.pod.uid', 'witness.systemd.unit', 'witness.systemd.user_unit',
  'witness.systemd.user_unit.uid', 'witness.identity.source',
];
const CONTEXT_SET = new Set(CONTEXT_KEYS);

/** Omitted from a compact record when it equals process.pid (the main thread); the join puts it back. */
const THREAD_ID = 'thread.id';

/** Keys a compactor/joiner remembers at most (oldest forgotten first; a forgotten key's next record is full). */
export const DEFAULT_MAX_KEYS = 65_536;

type Snapshot = (AttributeValue | undefined)[];

function sameValue(a: AttributeValue | undefined, b: AttributeValue | undefined): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Hot path (every record): the key list is unrolled into straight-line code
// once, so each lookup is a named property load the JIT can cache per record
// shape instead of a keyed load in a loop (measured ~2x on the storm).
const snapshotOf = new Function('a', `return [${CONTEXT_KEYS.map((k) => `a[${JSON.stringify(k)}]`).join(', ')}];`) as (a: Attributes) => Snapshot;
const matchesRaw = new Function('a', 's', 'same',
  `return ${CONTEXT_KEYS.map((k, i) => `same(a[${JSON.stringify(k)}], s[${i}])`).join(' && ')};`) as
  (a: Attributes, s: Snapshot, same: typeof sameValue) => boolean;
function matches(a: Attributes, s: Snapshot): boolean {
  return matchesRaw(a, s, sameValue);
}

/** Only kernel event records are compacted; findings, scope and control records stay whole. */
function compactable(env: Envelope): string | null {
  const key = env.attributes[PROCESS_KEY];
  return typeof key === 'string' && !env.event.startsWith('finding.') ? key : null;
}

/** Process keys → what a stream remembers of each, the least recently set forgotten first past `max`. */
export class BoundedKeys<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string): V | undefined { return this.map.get(k); }
  has(k: string): boolean { return this.map.has(k); }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  delete(k: string): void { this.map.delete(k); }
  get size(): number { return this.map.size; }
}

/** Turns a stream of full envelopes into context records + compact records (one instance per output stream). */
export class ContextCompactor {
  private readonly known: BoundedKeys<Snapshot>;
  full = 0;
  compacted = 0;

  constructor(maxKeys = DEFAULT_MAX_KEYS) {
    this.known = new BoundedKeys(maxKeys);
  }

  get trackedKeys(): number { return this.known.size; }

  /**
   * The compactor's decision for `env`, with its bookkeeping (what it
   * remembers per key, the counters): WHOLE (not a process record), FULL (it
   * carries new context: serialise it as it is) or COMPACT (serialise
   * compactAttributes(env)). compact() and the fast line writer
   * (src/export/ndjson-line.ts) both decide through here, so they agree.
   */
  classify(env: Envelope): Decision {
    const key = compactable(env);
    if (key === null) return WHOLE;
    const a = env.attributes;
    const seen = this.known.get(key);
    let d: Decision;
    if (seen === undefined || !matches(a, seen)) {
      this.known.set(key, snapshotOf(a));
      this.full++;
      d = FULL;
    } else {
      this.compacted++;
      d = COMPACT;
    }
    if (env.event === 'process.exit') this.known.delete(key);
    return d;
  }

  /** The envelope to serialise: `env` itself when it carries (new) context, else a compact copy. */
  compact(env: Envelope): Envelope {
    return this.classify(env) === COMPACT ? { time: env.time, event: env.event, attributes: compactAttributes(env.attributes) } : env;
  }
}

export const WHOLE = 0;
export const FULL = 1;
export const COMPACT = 2;
export type Decision = typeof WHOLE | typeof FULL | typeof COMPACT;

/** A compact record's attributes: the context keys left out, thread.id too when it is the main thread. */
export function compactAttributes(a: Attributes): Attributes {
  const pid = a['process.pid'];
  const c: Attributes = {};
  for (const k in a) {
    if (CONTEXT_SET.has(k) || (k === THREAD_ID && a[k] === pid)) continue;
    c[k] = a[k]!;
  }
  return c;
}

/** The inverse of ContextCompactor for a consumer reading the stream in order (query, tests, OTLP from files). */
export class ContextJoiner {
  private readonly known: BoundedKeys<Snapshot>;
  /** compact records whose context record was not seen (dropped, rotated away, or read from the middle) */
  orphans = 0;

  constructor(maxKeys = DEFAULT_MAX_KEYS) {
    this.known = new BoundedKeys(maxKeys);
  }

  /** The full view of `env` (a new object when anything was added). */
  join(env: Envelope): Envelope {
    const key = compactable(env);
    if (key === null) return env;
    const a = env.attributes;
    let isContext = false;
    for (const k of CONTEXT_KEYS) if (k in a) { isContext = true; break; }
    let out = env;
    if (isContext) {
      this.known.set(key, snapshotOf(a));
    } else {
      const s = this.known.get(key);
      if (s === undefined) this.orphans++;
      out = joinContext(env, s === undefined ? undefined : contextOf(s));
    }
    if (env.event === 'process.exit') this.known.delete(key);
    return out;
  }
}

/** The context attributes of a full record (its CONTEXT_KEYS present): what a compact record of its key leaves out. */
export function contextAttributes(a: Attributes): Attributes {
  return contextOf(snapshotOf(a));
}

function contextOf(s: Snapshot): Attributes {
  const c: Attributes = {};
  for (let i = 0; i < CONTEXT_KEYS.length; i++) if (s[i] !== undefined) c[CONTEXT_KEYS[i]!] = s[i]!;
  return c;
}

/**
 * A compact record with its context put back (`context` from
 * contextAttributes of its key's context record; undefined when that record
 * is unknown: the thread id alone comes back). The joined attributes hold the
 * same names and values as the full record; the context keys come last.
 */
export function joinContext(env: Envelope, context: Attributes | undefined): Envelope {
  const a = env.attributes;
  const j: Attributes = { ...a };
  if (!(THREAD_ID in j) && typeof a['process.pid'] === 'number') j[THREAD_ID] = a['process.pid'];
  if (context !== undefined) Object.assign(j, context);
  return { time: env.time, event: env.event, attributes: j };
}
