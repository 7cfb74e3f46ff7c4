import { COMPACT, CONTEXT_KEYS, compactAttributes, type ContextCompactor } from '../events/compact.js';
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
  lastArr = v;
  lastArrJson = s;
  return s;
}

/** s: string; n: number; sn: string or null; sa: string[]; optional keys may be absent (never undefined-valued). */
type Kind = 's' | 'n' | 'sn' | 'sa';
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
};

const KIND_OF_EVENT: Record<string, keyof typeof OWN> = {
  'file.write': 'file', 'file.read_sensitive': 'file', 'file.unlink': 'unlink', 'file.rename': 'rename', 'network.connect': 'connect',
};

/** After the own keys: the enricher's (annotate), process key and agent first, then the optional ones. */
const TAIL: Own[] = [
  { key: 'witness.process.key', type: 's' }, { key: 'witness.agent', type: 's' },
];

const q = JSON.stringify;

function valueCode(o: Own, v: string, slot: number): string {
  switch (o.type) {
    // a per-key memo: the same path, key or agent comes record after record
    case 's': return `if (typeof ${v} !== 'string') return null; if (${v} !== memo[${slot}]) { memo[${slot}] = ${v}; memo[${slot + 1}] = str(${v}); } s += ${q(`,${q(o.key)}:`)} + memo[${slot + 1}];`;
    case 'n': return `if (typeof ${v} !== 'number') return null; s += ${q(`,${q(o.key)}:`)} + num(${v});`;
    case 'sn': return `if (${v} === null) s += ${q(`,${q(o.key)}:null`)}; else { if (typeof ${v} !== 'string') return null; s += ${q(`,${q(o.key)}:`)} + str(${v}); }`;
    case 'sa': return `{ const j = strArray(${v}); if (j === null) return null; s += ${q(`,${q(o.key)}:`)} + j; }`;
  }
}

/** Straight-line code per kind (like compact.ts's matchers): named loads the JIT caches per record shape. */
function compile(own: Own[]): Template {
  const lines: string[] = [
    'let n = 0; for (const k in a) n++;',
    'const pid = a["process.pid"]; const tid = a["thread.id"];',
    "if (typeof pid !== 'number' || typeof tid !== 'number') return null;",
    // the context keys are left out of a compact record, but counted: they account for attributes present
    `let m = 2 + ${CONTEXT_KEYS.map((k) => `(a[${q(k)}] !== undefined ? 1 : 0)`).join(' + ')};`,
    'let s = \'{"time":\' + str(env.time) + \',"event":\' + str(env.event) + \',"attributes":{"process.pid":\' + num(pid);',
    'if (tid !== pid) s += \',"thread.id":\' + num(tid);',
    'let v;',
  ];
  let slots = 0;
  for (const o of [...own, ...TAIL]) {
    lines.push(`v = a[${q(o.key)}];`);
    const code = valueCode(o, 'v', 2 * slots++);
    lines.push(o.optional ? `if (v !== undefined) { ${code} m++; }` : `${code} m++;`);
  }
  lines.push("v = a['witness.agent.pending']; if (v !== undefined) { if (v !== true) return null; s += ',\"witness.agent.pending\":true'; m++; }");
  // a scope's ids (scopeAttributes: run, session, tool call, then the tool's name when known)
  lines.push("v = a['witness.scope.run_id']; if (v !== undefined) {");
  for (const k of ['witness.scope.run_id', 'witness.scope.session_id', 'witness.scope.tool_call_id']) {
    lines.push(`  v = a[${q(k)}]; ${valueCode({ key: k, type: 's' }, 'v', 2 * slots++)} m++;`);
  }
  lines.push(`  v = a['witness.scope.tool_name']; if (v !== undefined) { ${valueCode({ key: 'witness.scope.tool_name', type: 's' }, 'v', 2 * slots++)} m++; }`);
  lines.push('}');
  lines.push('if (m !== n) return null; // an attribute this template does not know');
  lines.push("return s + '}}';");
  const body = `const memo = new Array(${2 * slots}).fill(null); return function (env) { const a = env.attributes; ${lines.join('\n')} };`;
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
export function compactLine(compactor: ContextCompactor, env: Envelope): string {
  const d = compactor.classify(env);
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
