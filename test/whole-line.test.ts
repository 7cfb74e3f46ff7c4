import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreSink } from '../src/daemon/store-sink.js';
import { COMPACT, ContextCompactor, WHOLE, type Decision } from '../src/events/compact.js';
import { rfc3339Nanos, type Attributes, type Envelope } from '../src/events/envelope.js';
import { compactLine } from '../src/export/ndjson-line.js';
import { WholeLine } from '../src/export/whole-line.js';
import { openStore } from '../src/store/db.js';

/**
 * The store's whole lines (src/export/whole-line.ts) against JSON.stringify(env),
 * byte for byte, over a stream as the pipeline writes it: runs of compact records,
 * a key whose context changes mid-run, interleaved keys, a process exit, findings.
 */

let t = 0;
const time = (): string => rfc3339Nanos(BigInt(Date.UTC(2026, 11, 2, 14)) * 1_000_000n + BigInt(++t) * 1_000_123n);
function open(key: string, pid: number, uid: number, exe: string, path = '/dev/null', event = 'file.write'): Envelope {
  const a: Attributes = {
    'process.pid': pid, 'thread.id': pid, 'file.path': path, 'witness.result': 3, 'witness.open.flags': ['O_WRONLY'],
    'process.user.id': uid, 'witness.gid': 0, 'process.command': 'paced', 'process.linux.cgroup': 77,
    'process.executable.path': exe, 'witness.process.key': key, 'witness.agent': null,
  };
  return { time: time(), event, attributes: a };
}

/** Writes `envs` as the pipeline does; the whole line each sink would get. */
function wholeLines(envs: Envelope[]): { lines: string[]; whole: WholeLine } {
  const compactor = new ContextCompactor();
  const whole = new WholeLine();
  const decided: { decision: Decision } = { decision: WHOLE };
  const lines = envs.map((env) => {
    const line = compactLine(compactor, env, decided);
    whole.set(env, line, decided.decision);
    return whole.get();
  });
  return { lines, whole };
}

describe('whole lines for the store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wa-whole-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('are JSON.stringify(env) over a mixed stream, and mostly reused from the previous record', () => {
    const envs: Envelope[] = [];
    for (let i = 0; i < 50; i++) envs.push(open('k1', 101, 0, '/bin/paced'));
    for (let i = 0; i < 5; i++) { envs.push(open('k2', 202, 0, '/bin/other')); envs.push(open('k1', 101, 0, '/bin/paced')); }
    envs.push({ time: time(), event: 'finding.sensitive_read', attributes: { 'process.pid': 101, 'witness.process.key': 'k1' } });
    for (let i = 0; i < 5; i++) envs.push(open('k1', 101, 0, '/bin/paced', `/tmp/f${i % 2}`));
    envs.push(open('k1', 101, 0, '/bin/paced', '/dev/null', 'process.exit'));
    for (let i = 0; i < 5; i++) envs.push(open('k1', 101, 0, '/bin/paced'));
    envs.push({ time: time(), event: 'sensor.heartbeat', attributes: { 'witness.records': 9 } });
    const { lines, whole } = wholeLines(envs);
    lines.forEach((l, i) => expect(l, `record ${i}`).toBe(JSON.stringify(envs[i])));
    expect(whole.reused).toBeGreaterThan(whole.serialised);
    expect(whole.reused + whole.serialised).toBe(envs.length);
  });

  it('a key whose context changed between two runs of the same compact tail gets its new context', () => {
    // k1 as uid 0, then setuid to 1000: a context record, then compact records whose tail is
    // the same as before the change. A tail remembered across the context record would put uid 0 back.
    const envs = [open('k1', 101, 0, '/bin/paced'), open('k1', 101, 0, '/bin/paced'), open('k1', 101, 0, '/bin/paced'),
      open('k1', 101, 1000, '/bin/paced'), open('k1', 101, 1000, '/bin/paced'), open('k1', 101, 1000, '/bin/paced')];
    const { lines } = wholeLines(envs);
    expect((JSON.parse(lines[5]!) as Envelope).attributes['process.user.id']).toBe(1000);
    lines.forEach((l, i) => expect(l, `record ${i}`).toBe(JSON.stringify(envs[i])));
  });

  it('reach the real store: every row queried back is the whole record', async () => {
    const store = openStore(join(dir, 'witness.db'));
    const sink = new StoreSink(store);
    try {
      const compactor = new ContextCompactor();
      const whole = new WholeLine();
      const decided: { decision: Decision } = { decision: WHOLE };
      const envs: Envelope[] = [];
      for (let i = 0; i < 3000; i++) envs.push(open(i % 7 === 0 ? 'k2' : 'k1', i % 7 === 0 ? 202 : 101, i < 1500 ? 0 : 1000, '/bin/paced'));
      for (const env of envs) {
        const line = compactLine(compactor, env, decided);
        // context records passed as plain whole records: the store keeps WholeLine's whole lines (the fallback path)
        whole.set(env, line, decided.decision === COMPACT ? COMPACT : WHOLE);
        sink.write(env, line, whole);
      }
      await sink.flush();
      expect(sink.stats()).toMatchObject({ written: 3000, dropped: 0 });
      expect(whole.reused).toBeGreaterThan(2000);
      expect(sink.events.query({})).toEqual(envs.map((e) => JSON.stringify(e)));
    } finally {
      await sink.close();
      store.close();
    }
  });
});
