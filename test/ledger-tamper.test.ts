import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { dsse } from '../src/index.js';
import { verifyPath, type VerifyReport } from '../src/ledger/index.js';
import { EventHasher } from '../src/ledger/hash.js';
import { formatRecord, formatRecordV1, parseRecord } from '../src/ledger/record.js';
import { run as verifyCli } from '../src/cli/verify.js';
import { newKey, readLines, tempDir, writeLines, writeSession } from './helpers/ledger-fixtures.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

const key = newKey();
const pub = crypto.createPublicKey(key);

async function fresh(events = 60): Promise<{ stateDir: string; dir: string }> {
  const stateDir = tempDir('tamper');
  roots.push(stateDir);
  const dir = await writeSession({ stateDir, signKey: key }, events);
  return { stateDir, dir };
}

function expectMismatch(r: VerifyReport, file: RegExp, reason: RegExp, seq?: number): void {
  expect(r.verified, JSON.stringify(r.failure)).toBe(false);
  expect(r.failure!.file).toMatch(file);
  expect(r.failure!.reason).toMatch(reason);
  if (seq !== undefined) expect(r.failure!.seq).toBe(seq);
}

const EVENTS = (dir: string): string => path.join(dir, 'events.ndjson');
const CPS = (dir: string): string => path.join(dir, 'checkpoints.ndjson');

describe('tamper matrix (each case must be MISMATCH with the right reason)', () => {
  it('untampered session verifies (control)', async () => {
    const { dir } = await fresh();
    expect((await verifyPath(dir, { pinned: pub })).verified).toBe(true);
  });

  it('a byte flipped in an event', async () => {
    const { dir } = await fresh();
    const buf = fs.readFileSync(EVENTS(dir));
    const lines = readLines(EVENTS(dir));
    const offset = lines.slice(0, 30).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0) + Buffer.byteLength(lines[30]!) - 10;
    buf[offset]! ^= 0x01;
    fs.writeFileSync(EVENTS(dir), buf);
    // v2 records carry no hash copies: the damaged segment (checkpoints every 25) is named from its first record
    expectMismatch(await verifyPath(dir, { pinned: pub }), /events\.ndjson/, /an event among records 25\.\.49 was modified/, 25);
  });

  it('a v1 ledger (hashes stored per record) still verifies, and there a flipped byte is pinned to its record', async () => {
    const stateDir = tempDir('tamper-v1');
    roots.push(stateDir);
    const dir = await writeSession({ stateDir, signKey: key, recordFormat: 1 }, 60);
    expect(readLines(EVENTS(dir))[3]).toMatch(/^\{"seq":3,"prev_chain":"[0-9a-f]{64}","leaf_hash":/);
    expect((await verifyPath(dir, { pinned: pub })).verified).toBe(true);
    const buf = fs.readFileSync(EVENTS(dir));
    const lines = readLines(EVENTS(dir));
    const offset = lines.slice(0, 30).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0) + Buffer.byteLength(lines[30]!) - 10;
    buf[offset]! ^= 0x01;
    fs.writeFileSync(EVENTS(dir), buf);
    expectMismatch(await verifyPath(dir, { pinned: pub }), /events\.ndjson/, /leaf_hash does not match the event bytes/, 30);
  });

  it('an event edited with every hash after it recomputed (no key needed for that)', async () => {
    const { dir } = await fresh();
    const lines = readLines(EVENTS(dir));
    const hasher = new EventHasher();
    let prev: string | null = null;
    const rebuilt = lines.map((l, i) => {
      const b = Buffer.from(l);
      const r = parseRecord(b, 0, b.length);
      if (typeof r === 'string') throw new Error(r);
      let ev = b.toString('utf8', r.eventStart, r.eventEnd);
      if (i === 40) ev = ev.replace('file-', 'FILE-');
      const p: string = prev ?? r.prevHex ?? '0'.repeat(64);
      const leaf = hasher.leafHexOfString(ev);
      const link = hasher.chainHex(p, leaf);
      prev = link;
      return formatRecord(i, ev).slice(0, -1);
    });
    writeLines(EVENTS(dir), rebuilt);
    expectMismatch(await verifyPath(dir, { pinned: pub }), /events\.ndjson/, /differs from (signed )?checkpoint/);
  });

  it('a line deleted', async () => {
    const { dir } = await fresh();
    const lines = readLines(EVENTS(dir));
    lines.splice(12, 1);
    writeLines(EVENTS(dir), lines);
    const r = await verifyPath(dir, { pinned: pub });
    expectMismatch(r, /events\.ndjson/, /expected seq 12, found 13/, 12);
    expect(r.failure!.line).toBe(13);
  });

  it('two lines swapped', async () => {
    const { dir } = await fresh();
    const lines = readLines(EVENTS(dir));
    [lines[20], lines[21]] = [lines[21]!, lines[20]!];
    writeLines(EVENTS(dir), lines);
    expectMismatch(await verifyPath(dir, { pinned: pub }), /events\.ndjson/, /expected seq 20, found 21/, 20);
  });

  it('the tail truncated (whole lines, and mid-line)', async () => {
    const { dir } = await fresh();
    const lines = readLines(EVENTS(dir));
    writeLines(EVENTS(dir), lines.slice(0, -3));
    expectMismatch(await verifyPath(dir, { pinned: pub }), /events\.ndjson/, /truncated/);
    expectMismatch(await verifyPath(dir, { pinned: pub, mode: 'fast' }), /events\.ndjson/, /truncated/);
    const { dir: d2 } = await fresh();
    const size = fs.statSync(EVENTS(d2)).size;
    fs.truncateSync(EVENTS(d2), size - 7);
    expectMismatch(await verifyPath(d2, { pinned: pub }), /events\.ndjson/, /truncated|torn/);
  });

  it('records appended after the final checkpoint', async () => {
    const { dir } = await fresh();
    const lines = readLines(EVENTS(dir));
    writeLines(EVENTS(dir), [...lines, lines[lines.length - 1]!]);
    expectMismatch(await verifyPath(dir, { pinned: pub }), /events\.ndjson/, /not sealed/);
  });

  it('a checkpoint removed (middle, and the final one)', async () => {
    const { dir } = await fresh();
    const cps = readLines(CPS(dir));
    writeLines(CPS(dir), [cps[0]!, ...cps.slice(2)]);
    expectMismatch(await verifyPath(dir, { pinned: pub }), /checkpoints\.ndjson/, /checkpoint removed/);
    expectMismatch(await verifyPath(dir, { pinned: pub, mode: 'fast' }), /checkpoints\.ndjson/, /checkpoint removed/);
    const { dir: d2 } = await fresh();
    writeLines(CPS(d2), readLines(CPS(d2)).slice(0, -1));
    expectMismatch(await verifyPath(d2, { pinned: pub }), /checkpoints\.ndjson|events\.ndjson/, /final shutdown checkpoint|not sealed/);
  });

  it('a checkpoint re-signed with another key (caught with --pubkey, and without it)', async () => {
    const { dir } = await fresh();
    const cps = readLines(CPS(dir));
    const env = JSON.parse(cps[cps.length - 1]!);
    const forged = dsse.sign(env.payloadType, Buffer.from(env.payload, 'base64'), newKey());
    writeLines(CPS(dir), [...cps.slice(0, -1), JSON.stringify(forged)]);
    const r = await verifyPath(dir, { pinned: pub });
    expectMismatch(r, /checkpoints\.ndjson/, /signature does not verify with the pinned public key/);
    expect(r.failure!.line).toBe(cps.length);
    expectMismatch(await verifyPath(dir), /checkpoints\.ndjson/, /signature does not verify with the public key in session\.json/);
  });

  it('the public key in session.json replaced', async () => {
    const { dir } = await fresh();
    const sp = path.join(dir, 'session.json');
    const s = JSON.parse(fs.readFileSync(sp, 'utf8'));
    const other = crypto.createPublicKey(newKey()).export({ format: 'der', type: 'spki' }).subarray(12);
    s.ledger.public_key = other.toString('base64');
    fs.writeFileSync(sp, `${JSON.stringify(s, null, 2)}\n`);
    expectMismatch(await verifyPath(dir, { pinned: pub }), /session\.json/, /not the pinned public key/);
    expectMismatch(await verifyPath(dir), /checkpoints\.ndjson/, /public key in session\.json/);
  });

  it('session.json edited (exit code)', async () => {
    const { dir } = await fresh();
    const sp = path.join(dir, 'session.json');
    fs.writeFileSync(sp, fs.readFileSync(sp, 'utf8').replace('"exit_code": 0', '"exit_code": 1'));
    expectMismatch(await verifyPath(dir, { pinned: pub }), /session\.json/, /session\.json edited/);
  });

  it('a session removed from the global ledger', async () => {
    const stateDir = tempDir('tamper-global');
    roots.push(stateDir);
    for (let i = 0; i < 3; i++) await writeSession({ stateDir, signKey: key }, 5);
    expect((await verifyPath(stateDir, { pinned: pub })).verified).toBe(true);
    const ledger = path.join(stateDir, 'ledger.ndjson');
    const rows = readLines(ledger);
    writeLines(ledger, [rows[0]!, rows[2]!]);
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /ledger\.ndjson/, /expected seq 1, found 2/, 1);
    // Removing the last row *and* its checkpoint leaves a closed session nobody accounts for.
    writeLines(ledger, rows.slice(0, 2));
    const gcp = path.join(stateDir, 'ledger.checkpoints.ndjson');
    writeLines(gcp, readLines(gcp).slice(0, 2));
    // ledger.head still holds the removed checkpoint...
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /ledger\.checkpoints\.ndjson/, /ledger\.head holds host-ledger checkpoint 2 .* ends at checkpoint 1 .*rolled back/);
    // ...and rewound with it, the session left without a row is still caught.
    writeLines(path.join(stateDir, 'ledger.head'), readLines(gcp).slice(1, 2));
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /sessions\/.*session\.json/, /not in the host ledger/);
  });

  it('a session directory the host ledger lists is deleted', async () => {
    const stateDir = tempDir('tamper-global2');
    roots.push(stateDir);
    const dir = await writeSession({ stateDir, signKey: key }, 5);
    fs.rmSync(dir, { recursive: true });
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /ledger\.ndjson/, /missing/, 0);
  });
});

describe('witness verify CLI', () => {
  async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
    try {
      return { code: await verifyCli(argv), out, err };
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  }

  it('prints VERIFIED / MISMATCH with file, line, seq and reason; exit 0 / 1; unpinned is its own exit code 3 and says what it did not prove', async () => {
    const { dir } = await fresh(10);
    const pubFile = path.join(dir, '..', 'pinned.pub');
    fs.writeFileSync(pubFile, pub.export({ format: 'pem', type: 'spki' }));
    const ok = await cli(['--pubkey', pubFile, dir]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^VERIFIED session .* 12 records, .*signer pinned/);
    expect(ok.err).not.toMatch(/UNPINNED/);
    const unpinned = await cli(['--fast', dir]);
    expect(unpinned.code).toBe(3);
    expect(unpinned.err).toMatch(/SIGNER UNPINNED/);
    expect(unpinned.out).toMatch(/VERIFIED .*SIGNER UNPINNED/);
    expect(unpinned.out).toMatch(/^UNPINNED: not proven who signed/m);
    const unpinnedJson = await cli(['--json', dir]);
    expect(unpinnedJson.code).toBe(3);
    expect(JSON.parse(unpinnedJson.out)).toMatchObject({ result: 'VERIFIED', signerPinned: false, notProven: ['authorship'] });
    const lines = readLines(EVENTS(dir));
    lines.splice(4, 1);
    writeLines(EVENTS(dir), lines);
    const bad = await cli(['--pubkey', pubFile, dir]);
    expect(bad.code).toBe(1);
    expect(bad.out).toBe('MISMATCH events.ndjson line 5 seq 4: expected seq 4, found 5 (record deleted, inserted or reordered)\n');
    const j = await cli(['--json', '--pubkey', pubFile, dir]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.out)).toMatchObject({ result: 'MISMATCH', signerPinned: true, failure: { file: 'events.ndjson', seq: 4, line: 5 } });
  });
});
