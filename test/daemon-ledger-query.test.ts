import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run as query } from '../src/cli/query.js';
import { LedgerSink } from '../src/daemon/ledger-sink.js';
import { StoreSink } from '../src/daemon/store-sink.js';
import { WitnessError } from '../src/errors.js';
import { rfc3339Nanos, type Envelope } from '../src/events/envelope.js';
import { DaemonWriter, loadPublicKey, verifyPath, writeKeyPair } from '../src/ledger/index.js';
import { openStore } from '../src/store/db.js';

function env(msAgo: number, event: Envelope['event'], agent: string, pid: number): Envelope {
  return { time: rfc3339Nanos(BigInt(Date.now() - msAgo) * 1_000_000n), event, attributes: { 'process.pid': pid, 'witness.agent': agent } };
}

afterEach(() => { vi.restoreAllMocks(); });

describe('ledger sink', () => {
  it('appends every exported line to a daemon segment that verifies', async () => {
    const state = mkdtempSync(join(tmpdir(), 'witness-ledger-sink-'));
    const keys = writeKeyPair(join(state, 'host'));
    const writer = await DaemonWriter.create({ stateDir: state, signKeyPath: keys.privatePath });
    const sink = new LedgerSink(writer);
    for (let i = 0; i < 50; i++) {
      const e = env(0, 'process.exec', 'coder', i);
      sink.write(e, JSON.stringify(e));
    }
    await sink.close();
    expect(sink.stats()).toEqual({ written: 50, dropped: 0 });
    const report = await verifyPath(writer.dir, { pinned: loadPublicKey(keys.publicPath) });
    expect(report.verified).toBe(true);
  });
});

describe('witness query', () => {
  async function seeded(): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'witness-query-'));
    const path = join(dir, 'witness.db');
    const store = openStore(path);
    const sink = new StoreSink(store);
    for (const e of [
      env(3 * 3600_000, 'network.connect', 'coder', 1),
      env(30 * 60_000, 'network.connect', 'coder', 2),
      env(20 * 60_000, 'network.connect', 'reviewer', 3),
      env(10 * 60_000, 'process.exec', 'coder', 4),
    ]) sink.write(e, JSON.stringify(e));
    await sink.close();
    store.close();
    return path;
  }

  async function capture(argv: string[]): Promise<{ code: number; lines: string[] }> {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string) => { out += chunk; return true; }) as never);
    const code = await query(argv);
    vi.restoreAllMocks();
    return { code, lines: out.split('\n').filter(Boolean) };
  }

  it('filters by agent, event and --since, printing the stored NDJSON lines', async () => {
    const path = await seeded();
    const r = await capture(['--store', path, '--agent', 'coder', '--since', '1h', '--event', 'network.connect', '--json']);
    expect(r.code).toBe(0);
    expect(r.lines.map((l) => (JSON.parse(l) as Envelope).attributes['process.pid'])).toEqual([2]);
    const all = await capture(['--store', path, '--json']);
    expect(all.lines.length).toBe(4);
    const last = await capture(['--store', path, '--json', '--limit', '1']);
    expect(last.lines.map((l) => (JSON.parse(l) as Envelope).attributes['process.pid'])).toEqual([4]);
  });

  it('bad arguments are errors naming the option', async () => {
    const path = await seeded();
    await expect(query(['--store', path, '--since', 'yesterday'])).rejects.toThrow(WitnessError);
    await expect(query(['--store', path, '--since', 'yesterday'])).rejects.toThrow(/--since/);
    await expect(query(['--store', path, '--event', 'network.connct'])).rejects.toThrow(/--event: unknown event 'network.connct'/);
    await expect(query(['--store', path, '--limit', '0'])).rejects.toThrow(/--limit/);
    await expect(query(['--store', join(path, '..', 'missing.db')])).rejects.toThrow(/missing\.db/);
  });
});
