import { COMPACT, CONTEXT_KEYS, compactAttributes, type ContextCompactor, type Decision } from '../events/compact.js';
import type { Envelope } from '../events/envelope.js';

/**
 * The NDJSON line of an envelope as the output and the ledger get it:
 * exactly JSON.stringify(compactor.compact(env)), byte for byte, but the
 * compact records of the hot kinds (file.write, network.connect, ...) are
 * written by a per-kind template instead of copying the attributes into a
 * new object and walking it with JSON.stringify. On the 1M write-open storm
 * that pair was the largest user-space cost per record (~1 us of ~4).
 *
 * A template knows the kind's own keys in the order the producers add them
 * (src/sensor/ndjson.ts, netdepth, the enricher), and their types. It checks
 * everything it relies on and gives up (null: the reference path runs) on
 * anything else: a value of another type, a string JSON would escape, an
 * attribute it does not know (the key count tells). What it cannot check
 * cheaply is the order of the keys it knows; test/ndjson-line.test.ts
 * compares its bytes with JSON.stringify over every kind it handles, built
 * by the real producers.
 */

type Template = (env: Envelope) => string | null;

/** Longer strings are checked by regex (a character loop wins below this length). */
const LOOP_MAX = 64;
/** Characters JSON.stringify escapes: quote, backslash, control characters, (lone) surrogates. */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON.stringify(s) for a string: '"' + s + '"' when nothing in it is escaped. */
function str(s: string): string {
  if (s.length > LOOP_MAX) return ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

function num(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

// Flag lists come in runs of the same array or the same content: remember the last one.
let lastArr: readonly unknown[] | null = null;
let lastArrJson = '';

/** A string[] as JSON; null when it is not one. */
function strArray(v: unknown): string | null {
  if (v === lastArr) return lastArrJson;
  if (!Array.isArray(v)) return null;
  let s = '[';
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'string') return null;
    s += i === 0 ? str(x) : `,${str(x)}`;
  }
  s += ']';
  if (Object.isFrozen(v)) {
    lastArr = v;
    lastArrJson = s;
  }
  return s;
}

/** s: string; n: number; sn: string or null; sa: string[]; b: boolean; optional keys may be absent (never undefined-valued). */
type Kind = 's' | 'n' | 'sn' | 'sa' | 'b';
interface Own { key: string; type: Kind; optional?: boolean }

/** The kind's own attributes after process.pid and thread.id, in the order its builder adds them. */
const OWN: Record<string, Own[]> = {
  file: [
    { key: 'file.path', type: 's' }, { key: 'witness.result', type: 'n' }, { key: 'witness.open.flags', type: 'sa' },
    { key: 'witness.open.mode', type: 's', optional: true },
  ],
  unlink: [{ key: 'file.path', type: 's' }, { key: 'witness.result', type: 'n' }],
  rename: [
    { key: 'file.path', type: 's' }, { key: 'witness.file.old_path', type: 's' }, { key: 'witness.rename.flags', type: 'sa' },
    { key: 'witness.result', type: 'n' },
  ],
  connect: [
    { key: 'network.transport', type: 's' }, { key: 'network.type', type: 'sn' }, { key: 'network.peer.address', type: 'sn' },
    { key: 'network.peer.port', type: 'n' }, { key: 'witness.result', type: 'n' }, { key: 'witness.fd', type: 'n' },
    // netdepth names the peer from the tree's DNS answers
    { key: 'server.address', type: 's', optional: true }, { key: 'witness.server.address.source', type: 's', optional: true },
  ],
  // one per file a tar, npm or git unpacks (fchmod by fd: no flags; by path: user memory)
  chmod: [
    { key: 'witness.syscall', type: 's' }, { key: 'witness.result', type: 'n' }, { key: 'file.path', type: 's' },
    { key: 'witness.chmod.mode', type: 's' }, { key: 'witness.chmod.mode_after', type: 's', optional: true },
    { key: 'witness.chmod.special', type: 'sa' }, { key: 'witness.chmod.executable', type: 'b' },
    { key: 'witness.flags', type: 'sa', optional: true }, { key: 'witness.user_memory', type: 'sa', optional: true },
  ],
};

const KIND_OF_EVENT: Record<string, keyof typeof OWN> = {
  'file.write': 'file', 'file.read_sensitive': 'file', 'file.unlink': 'unlink', 'file.rename': 'rename', 'network.connect': 'connect',
  'security.chmod': 'chmod',
};

/** After the own keys: the enricher's (annotate), process key and agent first, then the optional ones. */
const TAIL: Own[] = [
  { key: 'witness.process.key', type: 's' }, { key: 'witness.agent', type: 's' },
];

const q = JSON.stringify;

/** A check of value `v` against its type; false: the template gives up. */
function checkCode(o: Own, v: string): string {
  const test = o.type === 's' ? `typeof ${v} === 'string'`
    : o.type === 'n' ? `typeof ${v} === 'number'`
      : o.type === 'sn' ? `(${v} === null || typeof ${v} === 'string')`
        : o.type === 'b' ? `typeof ${v} === 'boolean'`
          : `Array.isArray(${v})`;
  return o.optional ? `(${v} === undefined || ${test})` : test;
}

/** Appends key and value of a checked `v` to the suffix `s`. */
function writeCode(o: Own, v: string): string {
  const key = q(`,${q(o.key)}:`);
  const put = o.type === 's' ? `s += ${key} + str(${v});`
    : o.type === 'n' ? `s += ${key} + num(${v});`
      : o.type === 'sn' ? `s += ${key} + (${v} === null ? 'null' : str(${v}));`
        : o.type === 'b' ? `s += ${key} + (${v} ? 'true' : 'false');`
          : `{ const j = strArray(${v}); if (j === null) return null; s += ${key} + j; }`;
  return o.optional ? `if (${v} !== undefined) { ${put} }` : put;
}

const PENDING: Own = { key: 'witness.agent.pending', type: 'n', optional: true }; // checked as === true below
/** A scope's ids (scopeAttributes): run, session, tool call, then the tool's name when known. */
const SCOPE: Own[] = [
  { key: 'witness.scope.run_id', type: 's', optional: true }, { key: 'witness.scope.session_id', type: 's', optional: true },
  { key: 'witness.scope.tool_call_id', type: 's', optional: true }, { key: 'witness.scope.tool_name', type: 's', optional: true },
];

/**
 * Straight-line code per kind (like compact.ts's matchers): named loads the
 * JIT caches per record shape. Everything after the time is the same record
 * after record in a storm (same process, path, flags, agent): it is built
 * once, flattened, and reused while every value it was built from is the same.
 */
function compile(own: Own[]): Template {
  const keys = [...own, ...TAIL, PENDING, ...SCOPE];
  const v = (i: number): string => `v${i}`;
  const lines: string[] = [
    'let n = 0; for (const k in a) n++;',
    'const ev = env.event; const pid = a["process.pid"]; const tid = a["thread.id"];',
    "if (typeof pid !== 'number' || typeof tid !== 'number') return null;",
    // the context keys are left out of a compact record, but counted: they account for attributes present
    `let m = 2 + ${CONTEXT_KEYS.map((k) => `(a[${q(k)}] !== undefined ? 1 : 0)`).join(' + ')};`,
  ];
  keys.forEach((o, i) => {
    lines.push(`const ${v(i)} = a[${q(o.key)}];`);
    if (o === PENDING) lines.push(`if (${v(i)} !== undefined && ${v(i)} !== true) return null;`);
    else lines.push(`if (!(${checkCode(o, v(i))})) return null;`);
    lines.push(o.optional ? `if (${v(i)} !== undefined) m++;` : 'm++;');
  });
  lines.push('if (m !== n) return null; // an attribute this template does not know');
  // the scope's three ids come together or not at all
  const [run, session, call, tool] = [keys.indexOf(SCOPE[0]!), keys.indexOf(SCOPE[1]!), keys.indexOf(SCOPE[2]!), keys.indexOf(SCOPE[3]!)].map(v);
  lines.push(`if ((${run} === undefined) !== (${session} === undefined) || (${run} === undefined) !== (${call} === undefined) || (${run} === undefined && ${tool} !== undefined)) return null;`);
  const inputs = ['ev', 'pid', 'tid', ...keys.map((_, i) => v(i))];
  // arrays are the same only as the same frozen list (a list that can change cannot be remembered)
  const same = inputs.map((x, i) => {
    const o = i >= 3 ? keys[i - 3]! : null;
    return o !== null && o.type === 'sa' ? `(${x} === last[${i}] && Object.isFrozen(${x}))` : `${x} === last[${i}]`;
  }).join(' && ');
  lines.push(`if (!(${same})) {`);
  lines.push(`  let s = ',"event":' + str(ev) + ',"attributes":{"process.pid":' + num(pid);`);
  lines.push(`  if (tid !== pid) s += ',"thread.id":' + num(tid);`);
  keys.forEach((o, i) => {
    if (o === PENDING) lines.push(`  if (${v(i)} === true) s += ',"witness.agent.pending":true';`);
    else lines.push(`  ${writeCode(o, v(i))}`);
  });
  lines.push("  s += '}}';");
  lines.push('  s.charCodeAt(0); // flattens it once, not at every write of every record it ends');
  lines.push(`  ${inputs.map((x, i) => `last[${i}] = ${x};`).join(' ')}`);
  lines.push('  suffix = s;');
  lines.push('}');
  lines.push(`return '{"time":' + str(env.time) + suffix;`);
  const body = `const last = new Array(${inputs.length}).fill(null); let suffix = ''; last[0] = {}; ` +
    `return function (env) { const a = env.attributes; ${lines.join('\n')} };`;
  return new Function('str', 'num', 'strArray', body)(str, num, strArray) as Template;
}

const TEMPLATES: Record<string, Template> = {};
for (const [event, kind] of Object.entries(KIND_OF_EVENT)) TEMPLATES[event] = compile(OWN[kind]!);

/** The compact line of `env` by its kind's template; null when there is none or it gave up. */
export function compactLineFast(env: Envelope): string | null {
  const t = TEMPLATES[env.event];
  return t === undefined ? null : t(env);
}

/** Records the fast templates wrote and those the reference path wrote (tests, benchmarks). */
export const lineStats = { fast: 0, reference: 0 };

/** JSON.stringify(compactor.compact(env)), the hot compact records by template. */
export function compactLine(compactor: ContextCompactor, env: Envelope, decided?: { decision: Decision }): string {
  const d = compactor.classify(env);
  if (decided) decided.decision = d;
  if (d === COMPACT) {
    const fast = compactLineFast(env);
    if (fast !== null) {
      lineStats.fast++;
      return fast;
    }
    lineStats.reference++;
    return JSON.stringify({ time: env.time, event: env.event, attributes: compactAttributes(env.attributes) });
  }
  lineStats.reference++;
  return JSON.stringify(env);
}
