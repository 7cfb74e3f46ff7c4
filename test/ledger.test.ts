import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { merkle } from '../src/index.js';
import { SessionWriter, verifyPath } from '../src/ledger/index.js';
import { parseRecord } from '../src/ledger/record.js';
import { eventLine, newKey, readLines, tempDir, writeSession } from './helpers/ledger-fixtures.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });
function state(): string { const d = tempDir('state'); roots.push(d); return d; }

describe('SessionWriter', () => {
  it('writes records whose event bytes are stored verbatim and verifies in full and fast mode', async () => {
    const stateDir = state();
    const key = newKey();
    const dir = await writeSession({ stateDir, signKey: key }, 103);
    const lines = readLines(path.join(dir, 'events.ndjson'));
    // sensor.start + 103 events + sensor.stop
    expect(lines).toHaveLength(105);
    const buf = Buffer.from(`${lines[1]!}`);
    const rec = parseRecord(buf, 0, buf.length);
    if (typeof rec === 'string') throw new Error(rec);
    expect(rec.seq).toBe(1);
    expect(buf.toString('utf8', rec.eventStart, rec.eventEnd)).toBe(eventLine(0));
    expect(JSON.parse(lines[1]!).event).toEqual(JSON.parse(eventLine(0)));
    expect(JSON.parse(lines[0]!).event.event).toBe('sensor.start');
    expect(JSON.parse(lines[104]!).event.event).toBe('sensor.stop');

    for (const mode of ['full', 'fast'] as const) {
      const r = await verifyPath(dir, { mode, pinned: key, samples: 10 });
      expect(r.failure).toBeUndefined();
      expect(r.verified).toBe(true);
      expect(r.records).toBe(105);
    }
    const cps = readLines(path.join(dir, 'checkpoints.ndjson'));
    expect(cps.length).toBe(5); // 4 by count (25 each) + shutdown
    const session = JSON.parse(fs.readFileSync(path.join(dir, 'session.json'), 'utf8'));
    expect(session.command).toEqual(['/bin/true', '--flag']);
    expect(session.ledger.tree_size).toBe(105);

    // The host ledger has a row, and the state dir verifies as a whole.
    const g = await verifyPath(stateDir, { pinned: key });
    expect(g.failure).toBeUndefined();
    expect(g.verified).toBe(true);
    expect(g.sessions).toBe(1);

    // A third party verifies a copy of the state dir somewhere else, offline.
    const copy = path.join(state(), 'copied-state');
    fs.cpSync(stateDir, copy, { recursive: true });
    const c = await verifyPath(copy, { pinned: key });
    expect(c.failure).toBeUndefined();
    expect(c.sessions).toBe(1);
  });

  it('records filesystem roots before and after over --track paths', async () => {
    const stateDir = state();
    const tracked = path.join(stateDir, 'tracked');
    fs.mkdirSync(tracked);
    fs.writeFileSync(path.join(tracked, 'a.txt'), 'one');
    const w = await SessionWriter.create({ stateDir, signKey: newKey(), command: ['x'], trackPaths: [tracked], checkpointEverySeconds: 0 });
    fs.writeFileSync(path.join(tracked, 'a.txt'), 'two');
    await w.close({ exitCode: 3, signal: null, counters: {}, drops: {}, executable: { path: '/usr/bin/x', sha256: 'ab' } });
    const s = JSON.parse(fs.readFileSync(path.join(w.dir, 'session.json'), 'utf8'));
    expect(s.exit_code).toBe(3);
    expect(s.executable.path).toBe('/usr/bin/x');
    expect(s.track[0].before.root).toMatch(/^[0-9a-f]{64}$/);
    expect(s.track[0].before.root).not.toBe(s.track[0].after.root);
    expect((await verifyPath(w.dir)).verified).toBe(true);
  });

  it('rejects event lines containing a newline and leaves the ledger intact', async () => {
    const stateDir = state();
    const key = newKey();
    const w = await SessionWriter.create({ stateDir, signKey: key, command: ['x'], checkpointEverySeconds: 0 });
    w.append(eventLine(1));
    expect(() => w.append('{"a":1}\n{"b":2}')).toThrow(/newline/);
    expect(() => w.append('')).toThrow(/non-empty/);
    await w.close({ exitCode: 0, counters: {}, drops: {} });
    expect((await verifyPath(w.dir, { pinned: key })).verified).toBe(true);
  });

  it('creates the state and session dirs 0700 and files 0600', async () => {
    const stateDir = path.join(state(), 'nested');
    const dir = await writeSession({ stateDir, signKey: newKey() }, 3);
    expect(fs.statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of ['events.ndjson', 'checkpoints.ndjson', 'session.json']) expect(fs.statSync(path.join(dir, f)).mode & 0o777, f).toBe(0o600);
    for (const f of ['ledger.ndjson', 'ledger.checkpoints.ndjson']) expect(fs.statSync(path.join(stateDir, f)).mode & 0o777, f).toBe(0o600);
  });

  it('uses a host key under the state dir when no key is given', async () => {
    const stateDir = state();
    const dir = await writeSession({ stateDir, signKey: undefined as never }, 2);
    expect(fs.statSync(path.join(stateDir, 'keys', 'host.key')).mode & 0o777).toBe(0o600);
    const { loadPublicKey } = await import('../src/ledger/keys.js');
    expect((await verifyPath(dir, { pinned: loadPublicKey(path.join(stateDir, 'keys', 'host.pub')) })).verified).toBe(true);
  });

  it('hashes exactly the stored bytes, per the documented scheme (independent re-derivation)', async () => {
    const stateDir = state();
    const w = await SessionWriter.create({ stateDir, signKey: newKey(), command: ['x'], checkpointEveryEvents: 7, checkpointEverySeconds: 0 });
    const odd = ['{"s":"caf\u00e9 \u2603 \ud83d\ude00"}', '{"lone":"a\ud800b"}', '{"raw":"\u0000"}', eventLine(5)];
    for (const l of odd) w.append(l);
    await w.close({ exitCode: 0, counters: {}, drops: {} });
    const sha = (...parts: Uint8Array[]): Buffer => { const h = crypto.createHash('sha256'); parts.forEach((p) => h.update(p)); return h.digest(); };
    const file = fs.readFileSync(path.join(w.dir, 'events.ndjson'));
    const leafData: Uint8Array[] = [];
    let prev: Buffer = Buffer.alloc(32);
    let pos = 0;
    while (pos < file.length) {
      const nl = file.indexOf(0x0a, pos);
      const rec = parseRecord(file, pos, nl);
      if (typeof rec === 'string') throw new Error(rec);
      const bytes = file.subarray(rec.eventStart, rec.eventEnd);
      const data = Buffer.concat([Buffer.from('agent-witness.v1.event\n'), bytes]);
      const leaf = sha(Uint8Array.of(0), data);
      // v2 records store no hashes (src/ledger/record.ts): the line is seq + the event bytes
      expect(rec.leafHex).toBeNull();
      expect(file.subarray(pos, nl).toString('utf8')).toBe(`{"seq":${leafData.length},"event":${bytes.toString('utf8')}}`);
      prev = sha(Buffer.from('agent-witness.v1.chain\n'), prev, leaf);
      leafData.push(data);
      pos = nl + 1;
    }
    const session = JSON.parse(fs.readFileSync(path.join(w.dir, 'session.json'), 'utf8'));
    // The ledger's Merkle tree is the plain RFC 6962 tree over leaf data "agent-witness.v1.event\n" || bytes.
    expect(Buffer.from(merkle.rootHash(leafData)).toString('hex')).toBe(session.ledger.root_hash);
    expect(prev.toString('hex')).toBe(session.ledger.chain_head);
    // The lone surrogate was stored as U+FFFD (EF BF BD), and that is what was hashed.
    expect(file.includes(Buffer.from('a\uFFFDb'))).toBe(true);
    expect((await verifyPath(w.dir)).verified).toBe(true);
  });

  it('verifies for many checkpoint cadences and sizes (consistency proofs between every pair)', async () => {
    const stateDir = state();
    const key = newKey();
    for (const [every, events] of [[1, 9], [2, 31], [3, 64], [16, 200], [33, 257], [100, 1000], [1000, 3]] as const) {
      const dir = await writeSession({ stateDir, signKey: key, checkpointEveryEvents: every }, events);
      for (const mode of ['full', 'fast'] as const) {
        const r = await verifyPath(dir, { mode, samples: 8 });
        expect(r.failure, `${every}/${events}/${mode}`).toBeUndefined();
        expect(r.records).toBe(events + 2);
      }
    }
    const g = await verifyPath(stateDir);
    expect(g.sessions).toBe(7);
  });

  it('handles event lines far larger than the scratch and flush buffers', async () => {
    const stateDir = state();
    const w = await SessionWriter.create({ stateDir, signKey: newKey(), command: ['x'], checkpointEveryEvents: 3, checkpointEverySeconds: 0 });
    const huge = JSON.stringify({ time: 't', event: 'file.write', attributes: { blob: 'é'.repeat(400_000) } });
    w.append(eventLine(0));
    w.append(huge);
    w.append(eventLine(1));
    await w.close({ exitCode: 0, counters: {}, drops: {} });
    const lines = readLines(path.join(w.dir, 'events.ndjson'));
    expect(lines[2]!.endsWith(`"event":${huge}}`)).toBe(true);
    for (const mode of ['full', 'fast'] as const) expect((await verifyPath(w.dir, { mode })).failure).toBeUndefined();
  });
});
