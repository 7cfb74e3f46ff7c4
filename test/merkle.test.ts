import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { merkle } from '../src/index.js';
import {
  MerkleFrontier, consistencyProofWith, inclusionPathWith, rootOfLeafHashes, segmentHasher,
} from '../src/ledger/merkle.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

/*
 * Known answers. The eight leaves and the tree heads for sizes 0..8 are the
 * reference vectors used by Certificate Transparency implementations of
 * RFC 6962 (certificate-transparency-go merkle testdata, also reproduced in
 * RFC 9162-era test suites); size 0 is SHA-256("") per RFC 6962 §2.1. The
 * inclusion/consistency proofs are the same suite's vectors, converted to
 * 0-based leaf indexes. They are additionally re-derived below from the RFC
 * definition with an independent straight-line implementation.
 */
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(unhex);
const CT_ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const CT_INCLUSION: Array<[number, number, string[]]> = [
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];
const CT_CONSISTENCY: Array<[number, number, string[]]> = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];

// Independent reference: RFC 6962 §2.1 MTH written out literally, nothing shared with src/.
function refMth(data: Uint8Array[]): Buffer {
  const h = (...parts: Uint8Array[]): Buffer => { const c = crypto.createHash('sha256'); parts.forEach((p) => c.update(p)); return c.digest(); };
  if (data.length === 0) return h();
  if (data.length === 1) return h(Uint8Array.of(0), data[0]!);
  let k = 1;
  while (k * 2 < data.length) k *= 2;
  return h(Uint8Array.of(1), refMth(data.slice(0, k)), refMth(data.slice(k)));
}

const flip = (b: Uint8Array): Uint8Array => { const c = Uint8Array.from(b); c[0]! ^= 1; return c; };

describe('merkle known answers (RFC 6962 / RFC 9162)', () => {
  it('tree heads for sizes 0..8', () => {
    for (let n = 0; n <= 8; n++) {
      expect(hex(merkle.rootHash(CT_LEAVES.slice(0, n))), `size ${n}`).toBe(CT_ROOTS[n]);
      expect(hex(refMth(CT_LEAVES.slice(0, n)))).toBe(CT_ROOTS[n]);
    }
  });

  it('leafHash is SHA-256(0x00 || data)', () => {
    expect(hex(merkle.leafHash(new Uint8Array(0)))).toBe(CT_ROOTS[1]);
  });

  it('inclusion proofs match the reference vectors and verify', () => {
    for (const [index, size, proofHex] of CT_INCLUSION) {
      const proof = merkle.inclusionProof(CT_LEAVES.slice(0, size), index);
      expect(proof.map(hex), `leaf ${index} of ${size}`).toEqual(proofHex);
      const leaf = merkle.leafHash(CT_LEAVES[index]!);
      expect(merkle.verifyInclusion(leaf, index, size, proof, unhex(CT_ROOTS[size]!))).toBe(true);
      expect(merkle.verifyInclusion(leaf, index, size, proof, unhex(CT_ROOTS[size - 1]!))).toBe(false);
    }
  });

  it('consistency proofs match the reference vectors and verify', () => {
    for (const [m, n, proofHex] of CT_CONSISTENCY) {
      const proof = merkle.consistencyProof(CT_LEAVES.slice(0, n), m);
      expect(proof.map(hex), `${m} -> ${n}`).toEqual(proofHex);
      expect(merkle.verifyConsistency(m, n, unhex(CT_ROOTS[m]!), unhex(CT_ROOTS[n]!), proof)).toBe(true);
    }
    const p = merkle.consistencyProof(CT_LEAVES, 6);
    expect(merkle.verifyConsistency(6, 8, unhex(CT_ROOTS[5]!), unhex(CT_ROOTS[8]!), p)).toBe(false);
  });
});

describe('merkle round trips on 1..200 leaves', () => {
  const data = Array.from({ length: 200 }, (_, i) => crypto.createHash('sha256').update(`leaf ${i}`).digest().subarray(0, 1 + (i % 40)));
  const leaves = data.map((d) => merkle.leafHash(d));
  // Subtree [s, e) hashes do not depend on the tree size, so memoise them across sizes.
  const memo = new Map<string, Uint8Array>();
  const memoMth = (s: number, e: number): Uint8Array => {
    const k = `${s}:${e}`;
    let v = memo.get(k);
    if (!v) { v = rootOfLeafHashes(leaves, s, e); memo.set(k, v); }
    return v;
  };

  it('rootHash matches the literal RFC recursion and the incremental frontier', () => {
    const frontier = new MerkleFrontier();
    for (let n = 1; n <= 200; n++) {
      frontier.append(leaves[n - 1]!);
      const root = hex(merkle.rootHash(data.slice(0, n)));
      expect(hex(frontier.root()), `size ${n}`).toBe(root);
      if (n % 17 === 0 || n < 20) expect(hex(refMth(data.slice(0, n)))).toBe(root);
    }
  });

  it('every inclusion proof verifies and every corruption fails', () => {
    for (let n = 1; n <= 200; n++) {
      const root = rootOfLeafHashes(leaves, 0, n);
      const mth = memoMth;
      for (let i = 0; i < n; i++) {
        const proof = inclusionPathWith(mth, i, 0, n);
        expect(merkle.verifyInclusion(leaves[i]!, i, n, proof, root), `leaf ${i} of ${n}`).toBe(true);
        if ((i * 7 + n) % 11 === 0) {
          expect(merkle.verifyInclusion(flip(leaves[i]!), i, n, proof, root)).toBe(false);
          if (n > 1) {
            expect(merkle.verifyInclusion(leaves[i]!, (i + 1) % n, n, proof, root)).toBe(false);
            expect(merkle.verifyInclusion(leaves[i]!, i, n, [...proof.slice(0, -1), flip(proof[proof.length - 1]!)], root)).toBe(false);
            expect(merkle.verifyInclusion(leaves[i]!, i, n, proof.slice(0, -1), root)).toBe(false);
          }
        }
      }
      // The public API on raw data agrees with the internal path.
      const i = (n * 31) % n;
      expect(merkle.inclusionProof(data.slice(0, n), i).map(hex)).toEqual(inclusionPathWith(mth, i, 0, n).map(hex));
    }
  });

  it('every consistency proof verifies and every corruption fails', () => {
    const roots: Uint8Array[] = [new Uint8Array(32)];
    for (let n = 1; n <= 200; n++) roots.push(rootOfLeafHashes(leaves, 0, n));
    for (let n = 1; n <= 200; n++) {
      const mth = memoMth;
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProofWith(mth, m, n);
        expect(merkle.verifyConsistency(m, n, roots[m]!, roots[n]!, proof), `${m} -> ${n}`).toBe(true);
        if (m < n && (m * 13 + n) % 7 === 0) {
          expect(merkle.verifyConsistency(m, n, flip(roots[m]!), roots[n]!, proof)).toBe(false);
          expect(merkle.verifyConsistency(m, n, roots[m]!, flip(roots[n]!), proof)).toBe(false);
          expect(merkle.verifyConsistency(m, n, roots[m]!, roots[n]!, [...proof.slice(1)])).toBe(false);
          expect(merkle.verifyConsistency(m, n, roots[m]!, roots[n]!, proof.map((p, j) => (j === 0 ? flip(p) : p)))).toBe(false);
        }
      }
      if (n % 20 === 0) {
        const m = Math.ceil(n / 3);
        expect(merkle.consistencyProof(data.slice(0, n), m).map(hex)).toEqual(consistencyProofWith(mth, m, n).map(hex));
      }
    }
  });

  it('proofs built from a frontier plus the new leaves equal proofs from the whole tree', () => {
    for (const [m, n] of [[0, 1], [1, 2], [3, 7], [5, 200], [64, 65], [100, 199], [127, 128], [128, 200]] as const) {
      const f = new MerkleFrontier();
      for (let i = 0; i < m; i++) f.append(leaves[i]!);
      const seg = segmentHasher(m, f.frontier, leaves.slice(m, n));
      const full = (s: number, e: number): Uint8Array => rootOfLeafHashes(leaves, s, e);
      expect(consistencyProofWith(seg, m, n).map(hex)).toEqual(consistencyProofWith(full, m, n).map(hex));
      for (let i = m; i < n; i += 7) expect(inclusionPathWith(seg, i, 0, n).map(hex)).toEqual(inclusionPathWith(full, i, 0, n).map(hex));
    }
  });

  it('rejects out-of-range arguments', () => {
    expect(() => merkle.inclusionProof(CT_LEAVES, 8)).toThrow(RangeError);
    expect(() => merkle.consistencyProof(CT_LEAVES, 9)).toThrow(RangeError);
    expect(merkle.verifyInclusion(leaves[0]!, 0, 0, [], leaves[0]!)).toBe(false);
    expect(merkle.verifyConsistency(3, 2, leaves[0]!, leaves[1]!, [])).toBe(false);
    expect(merkle.verifyConsistency(0, 5, unhex(CT_ROOTS[0]!), unhex(CT_ROOTS[5]!), [])).toBe(true);
  });
});
