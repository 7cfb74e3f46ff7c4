import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cachedHasher } from '../src/cli/run-hash-cache.js';

const root = process.getuid?.() === 0;
const dir = mkdtempSync(join(tmpdir(), 'witness-hash-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!root)('executable digest cache between runs', () => {
  it('a digest computed by one run is a cache hit for the next, for the same file identity only', () => {
    const a = cachedHasher(dir);
    const first = a.hasher.identify(process.pid, process.execPath);
    expect(first.status === 'ok' || first.status === 'pending').toBe(true);
    return (first.pending ?? Promise.resolve(first.sha256)).then((sha) => {
      a.save();
      const b = cachedHasher(dir);
      const again = b.hasher.identify(process.pid, process.execPath);
      expect(again).toMatchObject({ status: 'ok', sha256: sha });
      expect(b.hasher.counts.cacheHits).toBe(1);
    });
  });

  it('ignores a cache file others could have written, and entries that are not digests', () => {
    const path = join(dir, 'cache', 'exe-hash-cache.json');
    const saved = readFileSync(path, 'utf8');
    chmodSync(path, 0o644);
    expect(cachedHasher(dir).hasher.known()).toEqual([]);
    chmodSync(path, 0o600);
    writeFileSync(path, JSON.stringify([['1:2:3:4:5', 'not-a-digest'], ['../x', 'a'.repeat(64)]]));
    expect(cachedHasher(dir).hasher.known()).toEqual([]);
    writeFileSync(path, saved);
    expect(cachedHasher(dir).hasher.known().length).toBeGreaterThan(0);
  });
});
