import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonWriter, verifyPath } from '../src/ledger/index.js';
import { loadOrCreateHostKey } from '../src/ledger/session.js';
import { buildLedgerForChildren } from './helpers/ledger-build.js';
import { readLines, tempDir } from './helpers/ledger-fixtures.js';

/**
 * kill -9 of the daemon's ledger at random points, 50 times. The child is
 * the daemon's ledger half (DaemonWriter: segments, rotation, host-ledger
 * rows) without the probes, so 50 restarts fit in CI; each start first seals
 * the epoch its killed predecessor left open. After every restart the state
 * dir must verify (the live epoch reported open), every kill must show up as
 * a restart record in the crashed epoch, and each new epoch names the one it
 * sealed, so the history continues across crashes.
 */
const ITERATIONS = 50;
let built = '';
const roots: string[] = [];
beforeAll(() => { built = buildLedgerForChildren(); }, 120_000);
afterAll(() => { for (const r of [...roots, built]) if (r) fs.rmSync(r, { recursive: true, force: true }); });

const CHILD = `
const [modUrl, stateDir] = process.argv.slice(1);
const { DaemonWriter } = await import(modUrl);
const w = await DaemonWriter.create({ stateDir, segmentMaxBytes: 48000, segmentMaxSeconds: 0,
  checkpointEveryEvents: 100, checkpointEverySeconds: 0.1, flushIntervalMs: 2 });
process.stdout.write(JSON.stringify({ epoch: w.epochId, sealed: w.sealedOnStart }) + '\\n');
await new Promise((r) => process.stdin.once('data', r)); // the parent has verified: go
let i = 0;
for (;;) {
  for (let j = 0; j < 20; j++, i++) w.append(JSON.stringify({ time: '2026-12-01T00:00:00.000000000Z', event: 'file.write', attributes: { i, pad: 'x'.repeat(i % 200) } }));
  await new Promise((r) => setImmediate(r));
}
`;

interface Started { epoch: string; sealed: string[] }

function startChild(stateDir: string): Promise<{ info: Started; go: () => void; kill: () => Promise<void> }> {
  const modUrl = pathToFileURL(path.join(built, 'ledger', 'index.js')).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, modUrl, stateDir], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += String(d); });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      resolve({ info: JSON.parse(out.slice(0, nl)) as Started, go: () => child.stdin.write('go\n'), kill: async () => { child.kill('SIGKILL'); expect(await exited).toBe('SIGKILL'); } });
    });
    child.on('exit', (code) => reject(new Error(`daemon child exited (${code}) before it was ready: ${err}`)));
  });
}

function records(file: string): Array<{ event: string; attributes: Record<string, unknown> }> {
  return readLines(file).map((l) => JSON.parse(l).event);
}

describe(`kill -9 of the daemon ledger at random points × ${ITERATIONS}`, () => {
  it('every restart seals the crashed epoch (restart record, lost tail), verifies, and the chain continues', async () => {
    const stateDir = tempDir('kill');
    roots.push(stateDir);
    const pub = crypto.createPublicKey(loadOrCreateHostKey(stateDir));
    const epochs: string[] = [];
    const delays: number[] = [];
    let prev: Started | null = null;
    for (let i = 0; i < ITERATIONS; i++) {
      const { info, go, kill } = await startChild(stateDir);
      // the new epoch sealed exactly the one killed before it
      expect(info.sealed).toEqual(prev ? [`daemon/${prev.epoch}`] : []);
      // fast mode between kills (every checkpoint chain, sampled records); full mode at the end
      const r = await verifyPath(stateDir, { pinned: pub, mode: 'fast', samples: 4 });
      expect(r.failure, `iteration ${i}`).toBeUndefined();
      expect(r.open!.some((o) => o.includes(info.epoch))).toBe(true);
      // then it writes flat out, rotating segments, and dies at a random point
      const delay = crypto.randomInt(1, 150);
      delays.push(delay);
      go();
      await new Promise((res) => setTimeout(res, delay));
      await kill();
      epochs.push(info.epoch);
      prev = info;
    }
    // A clean start and stop seals the last crashed epoch too.
    const last = await DaemonWriter.create({ stateDir, segmentMaxSeconds: 0, checkpointEverySeconds: 0 });
    expect(last.sealedOnStart).toEqual([`daemon/${prev!.epoch}`]);
    await last.close();
    const final = await verifyPath(stateDir, { pinned: pub });
    expect(final.failure).toBeUndefined();
    expect(final.open).toEqual([]);

    let restarts = 0;
    let lostBytes = 0;
    let segments = 0;
    for (const epoch of epochs) {
      const dir = path.join(stateDir, 'daemon', epoch);
      const segs = fs.readdirSync(dir).filter((f) => /^segment-\d+\.ndjson$/.test(f)).sort();
      segments += segs.length;
      const lastSeg = records(path.join(dir, segs[segs.length - 1]!));
      const restart = lastSeg.filter((e) => e.event === 'sensor.restart');
      // one restart record per kill, in the epoch that was killed, naming who sealed it
      expect(restart, epoch).toHaveLength(1);
      expect(restart[0]!.attributes['witness.daemon.sealed_by']).toMatch(/^daemon\//);
      expect(lastSeg.at(-1)!.event).toBe('sensor.stop');
      const lost = restart[0]!.attributes['witness.ledger.lost_bytes'] as number;
      if (lost > 0) {
        const file = path.join(dir, restart[0]!.attributes['witness.ledger.lost_file'] as string);
        expect(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')).toBe(restart[0]!.attributes['witness.ledger.lost_sha256']);
      }
      lostBytes += lost;
      restarts += restart.length;
    }
    expect(restarts).toBe(ITERATIONS);
    expect(final.daemonSegments).toBe(segments + 1);
    // figures for the closing note
    process.stderr.write(`kill -9 × ${ITERATIONS}: ${restarts} restarts recorded, ${segments} segments, ${lostBytes} torn bytes kept aside, delays ${Math.min(...delays)}–${Math.max(...delays)} ms\n`);
  }, 300_000);
});
