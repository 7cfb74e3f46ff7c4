import crypto from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { checkpoint, cosignature, merkle, note, tlogProof } from '../src/index.js';
import { encodeSignerKey, encodeVerifierKey, keyHash, parseSignerKey, parseVerifierKey } from '../src/ledger/note-keys.js';

// Vectors from golang.org/x/mod/sumdb/note/note_test.go and sumdb/tlog/note_test.go.
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = 'If you think cryptography is the answer to your problem,\nthen you don\'t know what your problem is.\n';
const PETER_SIG = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

describe('signed note (Go sumdb/note vectors)', () => {
  it('signs byte-exactly', () => {
    expect(note.sign(TEXT, PETER_SKEY)).toBe(`${TEXT}\n${PETER_SIG}`);
    expect(() => note.sign('abc', PETER_SKEY)).toThrow(/malformed note/);
  });

  it('opens: verified names, unknown signers ignored, none verified throws', () => {
    const msg = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    expect(note.open(msg, [PETER_VKEY])).toEqual({ text: TEXT, verified: ['PeterNeumann'] });
    expect(note.open(msg, [PETER_VKEY, ENOCH_VKEY]).verified).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(() => note.open(msg, [])).toThrow('note has no verifiable signatures');
    expect(() => note.open(`${TEXT}\n${ENOCH_SIG}`, [ENOCH_VKEY, PETER_VKEY, ENOCH_VKEY])).toThrow('ambiguous key EnochRoot+af0cfe78');
    expect(note.open(`${TEXT}\n${PETER_SIG}`, [ENOCH_VKEY, PETER_VKEY, ENOCH_VKEY]).verified).toEqual(['PeterNeumann']);
    expect(() => note.open(`${TEXT}\n${PETER_SIG.repeat(101)}`, [PETER_VKEY])).toThrow(/malformed note/);
    expect(() => note.open(`${TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`, [PETER_VKEY])).toThrow('invalid signature for key PeterNeumann+c74f20a3');
    // duplicates collapse; a bad signature from an unknown key is only unverified
    const dup = `${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}${ENOCH_SIG.slice(0, 60)}ABCD${ENOCH_SIG.slice(60)}`;
    expect(note.open(dup, [PETER_VKEY]).verified).toEqual(['PeterNeumann']);
  });

  it('rejects malformed messages', () => {
    const bad: Array<string | Uint8Array> = [
      TEXT, `${TEXT}\n`, `${TEXT}\n${PETER_SIG.slice(0, -1)}`, `\x01${TEXT}\n${PETER_SIG}`,
      Buffer.concat([Buffer.of(0xff), Buffer.from(`${TEXT}\n${PETER_SIG}`)]),
      `${TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${TEXT}\n${PETER_SIG}Unexpected line.\n`,
    ];
    for (const m of bad) expect(() => note.open(m, [PETER_VKEY]), String(m)).toThrow(/malformed note/);
  });

  it('rejects every mangled verifier and signer key', () => {
    expect(parseVerifierKey(PETER_VKEY).name).toBe('PeterNeumann');
    expect(parseSignerKey(PETER_SKEY).keyHash).toBe(0xc74f20a3);
    for (const key of [PETER_VKEY, PETER_SKEY]) {
      const parse = key === PETER_VKEY ? parseVerifierKey : parseSignerKey;
      let rejected = 0;
      for (let i = 0; i <= key.length; i++) {
        for (let j = i + 1; j <= key.length; j++) {
          if (i === 0 && j === key.length) continue;
          expect(() => parse(key.slice(i, j)), key.slice(i, j)).toThrow();
          rejected++;
        }
      }
      const b = Buffer.from(key);
      for (let i = 0; i < b.length; i++) {
        b[i]!++;
        expect(() => parse(b.toString('latin1')), b.toString('latin1')).toThrow();
        b[i]!--;
      }
      expect(rejected).toBeGreaterThan(2000);
    }
    expect(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==')).toThrow();
    expect(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')).toThrow();
  });
});

describe('tlog checkpoint', () => {
  it('formats the sumdb tree golden byte-exactly', () => {
    const golden = 'go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n';
    const h = merkle.leafHash(Buffer.from('hello world'));
    expect(checkpoint.format({ origin: 'go.sum database tree', size: 123456789012, rootHash: h })).toBe(golden);
    const p = checkpoint.parse(golden);
    expect(p).toEqual({ origin: 'go.sum database tree', size: 123456789012, rootHash: Buffer.from(h), extensions: [] });
  });

  it('parses strictly', () => {
    const root = 'TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=';
    const bad = [
      `o\n0xabcdef\n${root}\n`, `o\n0123\n${root}\n`, `o\n-1\n${root}\n`, `o\n12\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n`,
      `o\n12\n${Buffer.alloc(31).toString('base64')}\n`, `o\n12\n${root}`, `\n12\n${root}\n`, `o\n12\n${root}\n\n`,
      `o\x01\n12\n${root}\n`, `o\n12\n${root}\next\r\n`, `o\n12\n`, `o\n99999999999999999\n${root}\n`, `o\n12\n${root} \n`,
    ];
    for (const t of bad) expect(() => checkpoint.parse(t), JSON.stringify(t)).toThrow(/malformed checkpoint/);
    expect(checkpoint.parse(`o\n0\n${root}\nx ext\n`).extensions).toEqual(['x ext']);
  });
});

describe('cosignature/v1 against an independent Ed25519 (@noble/curves)', () => {
  const body = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';

  it('our line verifies under noble; noble-built lines verify under ours', () => {
    const seed = crypto.randomBytes(32);
    const pub = ed25519.getPublicKey(seed);
    const name = 'witness.example.com/w1';
    // Built by hand from the spec, without our encoders.
    const algKey = Buffer.concat([Buffer.of(0x04), pub]);
    const id = crypto.createHash('sha256').update(`${name}\n`).update(algKey).digest().subarray(0, 4);
    const vkey = `${name}+${id.toString('hex')}+${algKey.toString('base64')}`;
    const skey = `PRIVATE+KEY+${name}+${id.toString('hex')}+${Buffer.concat([Buffer.of(0x04), seed]).toString('base64')}`;
    const ts = 1679315147;

    const line = cosignature.sign(body, skey, ts);
    expect(line.startsWith(`— ${name} `) && line.endsWith('\n')).toBe(true);
    const raw = Buffer.from(line.slice(name.length + 3, -1), 'base64');
    expect(raw.length).toBe(4 + 8 + 64);
    expect(raw.subarray(0, 4)).toEqual(id);
    expect(raw.readBigUInt64BE(4)).toBe(BigInt(ts));
    const msg = Buffer.from(`cosignature/v1\ntime ${ts}\n${body}`);
    expect(ed25519.verify(raw.subarray(12), msg, pub)).toBe(true);
    expect(cosignature.verify(body, line, vkey)).toBe(ts);

    const ts2 = 1700000000;
    const sig2 = ed25519.sign(Buffer.from(`cosignature/v1\ntime ${ts2}\n${body}`), seed);
    const t = Buffer.alloc(8); t.writeBigUInt64BE(BigInt(ts2));
    const nobleLine = `— ${name} ${Buffer.concat([id, t, sig2]).toString('base64')}\n`;
    expect(cosignature.verify(body, nobleLine, vkey)).toBe(ts2);
    // the same line through note.open with a cosigner vkey
    expect(note.open(`${body}\n${nobleLine}`, [vkey]).verified).toEqual([name]);

    expect(() => cosignature.verify(body.replace('20852163', '20852164'), line, vkey)).toThrow(/invalid signature/);
    const wrongTime = Buffer.from(raw); wrongTime.writeBigUInt64BE(BigInt(ts + 1), 4);
    expect(() => cosignature.verify(body, `— ${name} ${wrongTime.toString('base64')}\n`, vkey)).toThrow(/invalid signature/);
    // a log (type 0x01) key is not a cosigner key
    expect(() => cosignature.verify(body, line, encodeVerifierKey(name, 0x01, pub))).toThrow(/type 0x04/);
  });

  it('key ids: 0x01 log keys and 0x04 cosigner keys differ for the same key', () => {
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    const s1 = parseSignerKey(encodeSignerKey('h.agent-witness/state', 0x01, privateKey));
    const s4 = parseSignerKey(encodeSignerKey('h.agent-witness/state', 0x04, privateKey));
    expect(s1.keyHash).not.toBe(s4.keyHash);
    expect(s4.keyHash).toBe(keyHash('h.agent-witness/state', Buffer.concat([Buffer.of(4), s4.publicKey])));
  });
});

describe('tlog-proof', () => {
  it('round trips and parses strictly', () => {
    const cp = `example.com/fancylog\n2\n${Buffer.alloc(32, 7).toString('base64')}\n\n— example.com/fancylog AAAAAQ==\n`;
    const p = { extra: Buffer.from('event bytes'), index: 1, inclusionProof: [Buffer.alloc(32, 1)], checkpoint: cp };
    const text = tlogProof.format(p);
    expect(text.startsWith('c2sp.org/tlog-proof@v1\nextra ZXZlbnQgYnl0ZXM=\nindex 1\n')).toBe(true);
    expect(tlogProof.parse(text)).toEqual({ extra: Buffer.from('event bytes'), index: 1, inclusionProof: [Buffer.alloc(32, 1)], checkpoint: cp });
    expect(() => tlogProof.parse(text.replace('index 1', 'index 01'))).toThrow(/malformed tlog-proof/);
    expect(() => tlogProof.parse(text.replace('c2sp.org/tlog-proof@v1', 'c2sp.org/tlog-proof@v2'))).toThrow(/malformed tlog-proof/);
    expect(() => tlogProof.parse(text.replace(/\n\nexample/, '\nexample'))).toThrow();
  });
});
