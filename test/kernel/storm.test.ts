import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyPath } from '../../src/ledger/index.js';
import { parseRecord } from '../../src/ledger/record.js';
import { kernelSuite } from '../helpers/kernel.js';

const suite = kernelSuite();
const ROOT = join(__dirname, '..', '..');
const N = 200_000;

/** Per event name, from NDJSON lines (bare envelopes or ledger records wrapping them). */
function countByEvent(lines: string[], unwrap: boolean): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) {
    let ev: { event: string };
    if (unwrap) {
      const b = Buffer.from(l);
      const r = parseRecord(b, 0, b.length);
      if (typeof r === 'string') throw new Error(r);
      ev = JSON.parse(b.toString('utf8', r.eventStart, r.eventEnd)) as { event: string };
    } else {
      ev = JSON.parse(l) as { event: string };
    }
    m.set(ev.event, (m.get(ev.event) ?? 0) + 1);
  }
  return m;
}

describe.skipIf(suite.skip)('the write-open storm through witness run --out with the ledger on', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wa-storm-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // the storm repeats one path: without --budget-events 0 all but the budget would be counted, not written (fairness)
  it('delivers every event the kernel emitted to the file, the ledger and the summary; every stage balances', async () => {
    const storm = join(dir, 'storm');
    chmodSync(dir, 0o755); // the agent runs as nobody (`--user nobody`) and must reach the storm binary
    execFileSync('cc', ['-O2', '-o', storm, join(ROOT, 'bench', 'storm.c')]);
    const out = join(dir, 'out.ndjson');
    const session = join(dir, 'session');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'witness.js'), 'run', '--user', 'nobody', '--out', out, '--session-dir', session, '--budget-events', '0', '--', storm, String(N)],
      { encoding: 'utf8', timeout: 300_000, env: { ...process.env, WITNESS_STATE_DIR: join(dir, 'state') } });
    expect(r.status, r.stderr).toBe(0);

    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    const file = countByEvent(lines, false);
    const finalBeat = JSON.parse(lines[lines.length - 1]!) as { event: string; attributes: Record<string, number | boolean> };
    expect(finalBeat.event).toBe('sensor.heartbeat');
    expect(finalBeat.attributes['witness.sensor.final']).toBe(true);
    const a = finalBeat.attributes;
    const emittedWrites = a['witness.kernel.emitted.file_write'] as number;
    // the kernel stage: emitted = delivered + dropped, per kind and in total
    expect(emittedWrites).toBe(N);
    expect(a['witness.drops.total']).toBe(0);
    expect(a['witness.decoded']).toBe(a['witness.records']);
    const emittedAll = Object.entries(a).filter(([k]) => k.startsWith('witness.kernel.emitted.')).reduce((s, [, v]) => s + (v as number), 0);
    expect(emittedAll).toBe((a['witness.records'] as number) + (a['witness.drops.kernel'] as number));
    // the output stage: exactly what the kernel emitted, per kind (fork records feed the tree, not the file)
    expect(file.get('file.write')).toBe(emittedWrites);
    expect(file.get('process.exec')).toBe(a['witness.kernel.emitted.exec']);
    expect(file.get('process.exit')).toBe(a['witness.kernel.emitted.exit']);
    expect(r.stderr).toMatch(new RegExp(`file\\.write=${N} .*drops=0 \\(kernel 0, user 0, output 0\\)`));
    // the drain window (the C consumer's `seconds`): it ends once every record of the tree is out,
    // i.e. all lines but the final heartbeat, and inside the whole command's time
    const drained = /witness: (\d+) records of the tree drained in ([\d.]+) s after the agent's release/.exec(r.stderr);
    expect(drained, r.stderr).not.toBeNull();
    expect(Number(drained![1])).toBe(lines.length - 1);
    const whole = Number(/decode_errors=\d+ in ([\d.]+)s/.exec(r.stderr)![1]);
    expect(Number(drained![2])).toBeGreaterThan(0);
    expect(Number(drained![2])).toBeLessThan(whole);

    // the ledger stage: the same lines, sealed, small, verified
    const ledgerLines = readFileSync(join(session, 'events.ndjson'), 'utf8').trimEnd().split('\n');
    const ledger = countByEvent(ledgerLines, true);
    for (const [event, n] of file) expect(ledger.get(event), event).toBe(n);
    const writeRecord = ledgerLines.find((l) => l.includes('"event":"file.write"'))!;
    expect(Buffer.byteLength(writeRecord) + 1).toBeLessThanOrEqual(300);
    const summary = JSON.parse(readFileSync(join(session, 'session.json'), 'utf8')) as { counters: Record<string, number>; drops: Record<string, number> };
    expect(summary.counters['file.write']).toBe(N);
    expect(Object.values(summary.drops).every((v) => v === 0)).toBe(true);
    expect(summary.drops.output).toBe(0);
    const v = await verifyPath(session);
    expect(v.verified, JSON.stringify(v.failure)).toBe(true);
  }, 320_000);
});

describe.skipIf(suite.skip)('per-kind kernel counters', () => {
  it('name every record kind the decoder knows, so no kind\'s emitted or dropped count is left out of the balance', async () => {
    const { WitnessSensor } = await import('../../src/sensor/sensor.js');
    const { RECORD_KIND_NAMES } = await import('../../src/sensor/types.js');
    const sensor = WitnessSensor.open({ onEvent: () => {} });
    try {
      const s = sensor.stats();
      for (const kind of Object.values(RECORD_KIND_NAMES)) {
        expect(s.kernelEmitted, kind).toHaveProperty(kind);
        expect(s.kernelDropped, kind).toHaveProperty(kind);
        expect(s.delivered, kind).toHaveProperty(kind);
      }
    } finally {
      await sensor.close();
    }
  });
});
