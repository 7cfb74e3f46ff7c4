import { describe, expect, it } from 'vitest';
import { LAYOUT as L } from '../src/sensor/layout.js';
import { SuppressionSummarizer, suppressedKeyText, type SuppressRow } from '../src/sensor/suppression.js';

/** The summariser of the kernel's repeat counters (pure: rows in, summaries out). */
function row(over: Partial<SuppressRow>): SuppressRow {
  return {
    pid: 10, type: L.WA_EV_CONNECT, hash: 1n, count: 0, winStartNs: 100n, firstNs: 110n, lastNs: 120n, keyFullLen: 20,
    key: Buffer.from([2, 0, 0x50, 0, 127, 0, 0, 1, ...new Array(12).fill(0)]), uid: 0, gid: 0, cgroupId: 1n,
    comm: 'x', deleted: false, ...over,
  };
}

describe('SuppressionSummarizer', () => {
  it('reports what each counter gained since the last sweep, so summaries add up to the kernel count', () => {
    const s = new SuppressionSummarizer({ budget: 5, windowNs: 1e9 });
    const a = s.summarize([row({ count: 7 })], false);
    expect(a.map((e) => [e.count, e.fromBootNs, e.toBootNs, e.key])).toEqual([[7, 110n, 120n, '127.0.0.1:80']]);
    expect(s.summarize([row({ count: 7 })], false)).toEqual([]); // nothing new
    const b = s.summarize([row({ count: 10, lastNs: 150n })], false);
    expect(b.map((e) => [e.count, e.fromBootNs, e.toBootNs])).toEqual([[3, 120n, 150n]]);
    // deleted with 2 more: reported, then forgotten; a new counter for the same key starts from 0
    expect(s.summarize([row({ count: 12, lastNs: 160n, deleted: true })], true).map((e) => e.count)).toEqual([2]);
    expect(s.summarize([row({ count: 4, firstNs: 200n, lastNs: 210n })], false).map((e) => [e.count, e.fromBootNs])).toEqual([[4, 200n]]);
    expect(s.summarized).toEqual({ connect: 16 });
  });

  it('reconcile turns kernel counts no counter accounts for into one keyless summary per kind', () => {
    const s = new SuppressionSummarizer({ budget: 5, windowNs: 1e9 });
    s.summarize([row({ count: 7 })], true);
    const r = s.reconcile({ connect: 9, dns: 0 }, 999n);
    expect(r.map((e) => [e.suppressedKind, e.count, e.key])).toEqual([['connect', 2, null]]);
    expect(s.reconcile({ connect: 9 }, 999n)).toEqual([]);
  });

  it('names keys: IPv6 destinations bracketed, DNS questions parsed past the stripped ID, paths as text', () => {
    const v6 = Buffer.from([10, 0, 53, 0, ...new Array(15).fill(0), 1]);
    expect(suppressedKeyText(L.WA_EV_CONNECT, v6)).toBe('[::1]:53');
    const q = Buffer.from('01000001000000000000076578616d706c6503636f6d0000010001', 'hex'); // a query without its ID
    expect(suppressedKeyText(L.WA_EV_DNS, q)).toBe('example.com A');
    expect(suppressedKeyText(L.WA_EV_FILE_WRITE, Buffer.from('/tmp/x'))).toBe('/tmp/x');
    expect(suppressedKeyText(L.WA_EV_CONNECT, Buffer.from([1, 0]))).toBeNull();
  });
});
