import { describe, expect, it } from 'vitest';
import { CONTEXT_KEYS, ContextCompactor, ContextJoiner } from '../src/events/compact.js';
import type { Attributes, Envelope } from '../src/events/envelope.js';
import { compactSensorEnvelopeSchema, sensorEnvelopeSchema } from '../src/events/schemas.js';

/** Full records as the enricher makes them (fixture: the shapes are what matters here). */
function full(event: Envelope['event'], pid: number, key: string, own: Attributes, ctx: Partial<Attributes> = {}): Envelope {
  return {
    time: '2026-12-01T23:00:00.000000001Z',
    event,
    attributes: {
      'process.pid': pid, 'thread.id': pid, 'process.user.id': 1000, 'witness.gid': 1000, 'process.command': 'sh',
      'process.linux.cgroup': '4242', ...own,
      'process.executable.path': '/bin/sh', 'process.user.name': 'dev', 'witness.process.parent_chain': ['10', '1'],
      'witness.cgroup.path': '/user.slice', 'witness.identity.source': 'tree', 'witness.process.key': key, 'witness.agent': 'coder',
      ...ctx,
    } as Attributes,
  };
}
const write = (n: number): Attributes => ({ 'file.path': `/tmp/f${n}`, 'witness.result': 3, 'witness.open.flags': ['O_WRONLY'] });

describe('compact records', () => {
  const stream: Envelope[] = [
    full('file.write', 20, '20-100', write(0)),
    full('file.write', 20, '20-100', write(1)),
    full('file.write', 21, '21-200', write(2), { 'process.command': 'cp' }),
    { ...full('file.write', 20, '20-100', write(3)), attributes: { ...full('file.write', 20, '20-100', write(3)).attributes, 'thread.id': 22 } },
    // setuid mid-life: the header's uid and the user name change, so this record carries the context again
    full('file.write', 20, '20-100', write(4), { 'process.user.id': 0, 'process.user.name': 'root' }),
    full('file.write', 20, '20-100', write(5), { 'process.user.id': 0, 'process.user.name': 'root' }),
    full('process.exit', 20, '20-100', { 'process.parent_pid': 10, 'process.exit.code': 0, 'witness.exit.signal': null, 'witness.exit.core_dumped': false },
      { 'process.user.id': 0, 'process.user.name': 'root' }),
    // the same pid again after exit: a new key, full again
    full('file.write', 20, '20-300', write(6)),
    { time: '2026-12-01T23:00:01.000000000Z', event: 'sensor.heartbeat', attributes: { 'witness.sensor.events': 7 } },
  ];

  it('writes the context once per key and again when it changes; joins back to exactly the full records', () => {
    const c = new ContextCompactor();
    const j = new ContextJoiner();
    const out = stream.map((e) => c.compact(e));
    const hasContext = out.map((e) => CONTEXT_KEYS.some((k) => k in e.attributes));
    expect(hasContext).toEqual([true, false, true, false, true, false, false, true, false]);
    // every record keeps what consumers filter by
    for (const e of out.slice(0, 8)) {
      for (const k of ['process.pid', 'witness.process.key', 'witness.agent', 'file.path'].slice(0, e.event === 'process.exit' ? 3 : 4)) expect(e.attributes).toHaveProperty([k]);
    }
    expect(out[1]!.attributes).not.toHaveProperty(['thread.id']);
    expect(out[3]!.attributes['thread.id']).toBe(22); // another thread: kept
    expect(JSON.stringify(out[1]).length).toBeLessThan(JSON.stringify(stream[1]).length / 2);
    const joined = out.map((e) => j.join(JSON.parse(JSON.stringify(e)) as Envelope));
    expect(joined).toEqual(stream);
    expect(j.orphans).toBe(0);
    expect(c.trackedKeys).toBe(2); // 20-100 forgotten at its exit
  });

  it('a compact record passes the compact schema, its joined view the full one', () => {
    const real = full('file.write', 20, '20-100', write(0), {});
    delete real.attributes['process.executable.path']; // file events carry none when /proc had no exe
    const c = new ContextCompactor();
    c.compact(real);
    const compact = c.compact(full('file.write', 20, '20-100', write(1), { 'process.executable.path': undefined as never }));
    expect(compactSensorEnvelopeSchema.safeParse(compact).success).toBe(true);
    expect(sensorEnvelopeSchema.safeParse(compact).success).toBe(false); // the header is missing without the join
  });

  it('a joiner that never saw the context counts the orphan instead of inventing context', () => {
    const c = new ContextCompactor();
    const lines = stream.slice(0, 2).map((e) => c.compact(e));
    const j = new ContextJoiner();
    const e = j.join(lines[1]!);
    expect(j.orphans).toBe(1);
    expect(e.attributes['process.user.name']).toBeUndefined();
    expect(e.attributes['thread.id']).toBe(20);
  });

  it('stays bounded: a forgotten key costs one full record, never a wrong join', () => {
    const c = new ContextCompactor(2);
    const j = new ContextJoiner(2);
    const keys = ['1-1', '2-2', '3-3', '1-1'];
    const recs = keys.map((k, i) => full('file.write', Number(k[0]), k, write(i)));
    const out = recs.map((e) => c.compact(e));
    expect(out.map((e) => 'witness.identity.source' in e.attributes)).toEqual([true, true, true, true]);
    expect(out.map((e) => j.join(e))).toEqual(recs);
  });
});

describe('compact schema coverage', () => {
  it('covers every decoded kind (kinds added later are compacted and validated without a change here)', async () => {
    const { sensorAttributeSchemas } = await import('../src/events/schemas.js');
    for (const name of Object.keys(sensorAttributeSchemas)) {
      const r = compactSensorEnvelopeSchema.safeParse({ time: '2026-12-01T23:00:00.000000001Z', event: name, attributes: { 'witness.process.key': '1-2' } });
      // fails on the kind's own required fields, never on an unknown event name
      const issues = r.success ? [] : r.error.issues;
      expect(issues.some((i) => i.code === 'invalid_union' && i.path.length === 1 && i.path[0] === 'event'), name).toBe(false);
    }
  });
});
