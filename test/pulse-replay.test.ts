import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { run as digestCli } from '../src/cli/digest.js';
import { run as pulseCli } from '../src/cli/pulse.js';
import { envelopeSchema } from '../src/events/envelope.js';
import { isWitnessError } from '../src/errors.js';
import { HOUR, Sim, T0, env } from './fixtures/pulse/sim.js';

let dir: string;
let out: string[];
let err: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pulse-replay-'));
  out = [];
  err = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => { out.push(String(chunk)); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => { err.push(String(chunk)); return true; });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

/** 12 h: quiet 04–07, sensor down 09–10 (no heartbeats, no events), a never-seen event kind. */
function recording(): string {
  const sim = new Sim()
    .heartbeats(T0, T0 + 9 * HOUR, 5 * 60_000).heartbeats(T0 + 11 * HOUR, T0 + 12 * HOUR, 5 * 60_000)
    .steady('coder', 0, 4, 3).steady('coder', 7, 9, 3).steady('coder', 11, 12, 3)
    .push(T0 + 30 * 60_000, 'dns.query', { 'witness.agent': 'coder', 'dns.question.name': 'example.com' });
  const file = join(dir, 'capture.ndjson');
  const future = JSON.stringify({ ...env(T0 + 60_000, 'sensor.heartbeat', {}), event: 'future.kind_from_a_newer_witness' });
  writeFileSync(file, `${sim.ndjson()}${future}\n\n`);
  return file;
}

describe('witness pulse replay', () => {
  it('prints the pulse events as NDJSON in the sensor envelope', async () => {
    const file = recording();
    const code = await pulseCli(['replay', '--json', '--quiet-windows', '2', '--max-silence', '10m', file]);
    expect(code).toBe(0);
    const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    for (const l of lines) expect(envelopeSchema.safeParse(l).success).toBe(true);
    const kinds = lines.map((l) => {
      const e = l as { event: string; attributes: Record<string, unknown> };
      return `${e.event}@${String(e.attributes['witness.window.start']).slice(11, 13)}`;
    });
    expect(kinds).toEqual([
      'pulse.first_seen@00',
      'pulse.alert@05', 'pulse.alert_cleared@07',
      'pulse.gap@09', 'pulse.gap@10',
    ]);
    expect(err.join('')).toMatch(/replayed \d+ events \(1 of unknown kinds skipped\), closed 11 windows, agents: coder/);
  });

  it('prints readable lines without --json, writes digests, and leaves a store status can read', async () => {
    const file = recording();
    const store = join(dir, 'state', 'witness.db');
    const digests = join(dir, 'digests');
    expect(await pulseCli(['replay', '--window', '1h', '--quiet-windows', '2', '--max-silence', '10m', '--store', store, '--digest-dir', digests, file])).toBe(0);
    expect(out.join('')).toMatch(/2026-11-01T05:00Z {2}pulse\.alert {9}coder {12}quiet for 2 windows/);
    expect(existsSync(join(digests, '2026-11-01', '10', 'digest.html'))).toBe(true);
    expect(readFileSync(join(digests, '2026-11-01', '10', 'digest.md'), 'utf8')).toContain('- example.com\n');

    out.length = 0;
    expect(await pulseCli(['status', '--json', '--store', store])).toBe(0);
    const status = JSON.parse(out.join('')) as { agents: { agent: string; quietStreak: number; alertActive: boolean; lastWindow: { status: string; start: string } }[] };
    expect(status.agents).toHaveLength(1);
    expect(status.agents[0]).toMatchObject({ agent: 'coder', quietStreak: 0, alertActive: false, lastWindow: { status: 'gap', start: '2026-11-01T10:00:00.000000000Z' } });

    out.length = 0;
    expect(await pulseCli(['status', '--store', store])).toBe(0);
    expect(out.join('')).toMatch(/^AGENT +STREAK +ALERT +LAST WINDOW +STATUS +EXT FLOWS +BAND\ncoder +0 +- +2026-11-01T10:00Z +gap \(no_heartbeat\) +0 +unarmed\n$/);

    out.length = 0;
    expect(await digestCli(['--store', store, '--dir', join(dir, 'd2'), '--window', '2026-11-01T05'])).toBe(0);
    expect(out.join('')).toBe(`${join(dir, 'd2', '2026-11-01', '05', 'digest.md')}\n${join(dir, 'd2', '2026-11-01', '05', 'digest.html')}\n`);
  });

  it('names file, line and field for a malformed line', async () => {
    const file = join(import.meta.dirname, 'fixtures', 'pulse', 'bad-time.ndjson');
    const e = await pulseCli(['replay', file]).catch((x: unknown) => x);
    expect(isWitnessError(e, 'E_CONFIG')).toBe(true);
    expect((e as Error).message).toBe(`${file}:3: time: time must be RFC 3339 UTC with nanoseconds`);
    const notJson = join(dir, 'x.ndjson');
    writeFileSync(notJson, '{"time": \n');
    await expect(pulseCli(['replay', notJson])).rejects.toThrow(`${notJson}:1: line: not JSON`);
  });

  it('rejects bad arguments with the flag named', async () => {
    await expect(pulseCli(['replay', '--window', 'soon', 'x'])).rejects.toThrow(/no such file|--window/);
    const file = recording();
    await expect(pulseCli(['replay', '--window', 'soon', file])).rejects.toThrow("--window: 'soon' is not a duration");
    await expect(pulseCli(['replay', '--quiet-windows', '0', file])).rejects.toThrow('--quiet-windows: \'0\' must be an integer >= 1');
    await expect(pulseCli(['replay', '--bogus', file])).rejects.toThrow(/arguments: Unknown option '--bogus'/);
    await expect(pulseCli(['status', '--store', join(dir, 'none.db')])).rejects.toThrow(/none\.db: no pulse store here yet/);
    await expect(digestCli(['--store', join(dir, 'none.db')])).rejects.toThrow(/no pulse store/);
    expect(await pulseCli(['frobnicate'])).toBe(2);
  });
});
