import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTEXT_KEYS, ContextCompactor, ContextJoiner } from '../../src/events/compact.js';
import type { Envelope } from '../../src/events/envelope.js';
import { compactSensorEnvelopeSchema, sensorEnvelopeSchema } from '../../src/events/schemas.js';
import { AttributionEnricher } from '../../src/identity/enricher.js';
import { toEnvelope } from '../../src/sensor/ndjson.js';
import { SensorHarness, kernelSuite } from '../helpers/kernel.js';

const suite = kernelSuite();
const TREE = (d: string): string =>
  `echo a > ${d}/a; (echo b > ${d}/b; echo c >> ${d}/b); sh -c 'echo d > ${d}/d; echo e > ${d}/e; echo f > ${d}/f'; echo g > ${d}/g`;

describe.skipIf(suite.skip)('compact records on a real process tree', () => {
  let h: SensorHarness;
  let dir: string;
  beforeAll(() => {
    h = new SensorHarness();
    dir = mkdtempSync(join(tmpdir(), 'wa-compact-'));
  });
  afterAll(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('joined compact records equal the full records the enricher made (old form)', async () => {
    const r = await h.run('sh', ['-c', TREE(dir)]);
    expect(r.code).toBe(0);
    const enricher = new AttributionEnricher({ clock: h.sensor.clock });
    const fullRecs: Envelope[] = [];
    for (const ev of r.events) for (const e of enricher.enrich(ev, toEnvelope(ev, h.sensor.clock))) fullRecs.push(e);
    await enricher.close();
    const old = fullRecs.map((e) => JSON.stringify(e));
    const compactor = new ContextCompactor();
    const lines = fullRecs.map((e) => JSON.stringify(compactor.compact(e)));
    const joiner = new ContextJoiner();
    const joined = lines.map((l) => JSON.stringify(joiner.join(JSON.parse(l) as Envelope)));

    const writes = fullRecs.filter((e) => e.event === 'file.write');
    expect(writes.length).toBeGreaterThanOrEqual(7);
    const keys = new Set(writes.map((e) => e.attributes['witness.process.key']));
    expect(keys.size).toBeGreaterThanOrEqual(3); // the shell, its subshell and the inner sh
    expect(compactor.compacted).toBeGreaterThan(0);
    expect(joiner.orphans).toBe(0);
    // same records, key for key (order of keys aside)
    expect(joined.map((l) => JSON.parse(l))).toEqual(old.map((l) => JSON.parse(l)));
    for (const l of lines) {
      const e = JSON.parse(l) as Envelope;
      if (e.event === 'sensor.heartbeat' || e.event.startsWith('finding.')) continue;
      const isContext = CONTEXT_KEYS.some((k) => k in e.attributes);
      const schema = isContext ? sensorEnvelopeSchema : compactSensorEnvelopeSchema;
      expect(schema.safeParse(e).success, l).toBe(true);
    }
    for (const l of joined) {
      const e = JSON.parse(l) as Envelope;
      expect(sensorEnvelopeSchema.safeParse(e).success, l).toBe(true);
    }
  });

  it('witness run --out writes each process context once; the file joins and verifies against the schemas', () => {
    const out = join(dir, 'run.ndjson');
    const agentDir = join(dir, 'agent'); // `witness run --user nobody` writes the tree's files here
    mkdirSync(agentDir);
    chmodSync(dir, 0o755);
    chmodSync(agentDir, 0o777);
    const r = spawnSync(process.execPath, [join(__dirname, '..', '..', 'bin', 'witness.js'), 'run', '--user', 'nobody', '--no-ledger', '--out', out, '--', 'sh', '-c', TREE(agentDir)],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, WITNESS_STATE_DIR: join(dir, 'state') } });
    expect(r.status, r.stderr).toBe(0);
    const recs = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Envelope);
    const joiner = new ContextJoiner();
    const byKey = new Map<string, number>();
    for (const e of recs) {
      const key = e.attributes['witness.process.key'];
      if (typeof key === 'string' && CONTEXT_KEYS.some((k) => k in e.attributes)) byKey.set(key, (byKey.get(key) ?? 0) + 1);
      const j = joiner.join(e);
      if (typeof key === 'string') expect(sensorEnvelopeSchema.safeParse(j).success, JSON.stringify(e)).toBe(true);
    }
    expect(joiner.orphans).toBe(0);
    const execs = recs.filter((e) => e.event === 'process.exec');
    expect(execs.length).toBeGreaterThanOrEqual(2);
    // a context record per key, and only one: nothing changed mid-life in this tree
    for (const x of execs) expect(byKey.get(x.attributes['witness.process.key'] as string)).toBe(1);
    const compactWrites = recs.filter((e) => e.event === 'file.write' && !('process.user.name' in e.attributes));
    expect(compactWrites.length).toBeGreaterThan(0);
  });
});
