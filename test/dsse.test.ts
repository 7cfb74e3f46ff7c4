import crypto from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { dsse } from '../src/index.js';
import { keyIdOf, privateKeyFromSeed, rawPublicKey } from '../src/ledger/keys.js';

const unhex = (h: string): Buffer => Buffer.from(h, 'hex');

// RFC 8032 §7.1, TEST 1 (empty message).
const RFC8032_SECRET = unhex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const RFC8032_PUBLIC = unhex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
const RFC8032_SIG = unhex('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b');

describe('DSSE known answers', () => {
  it('PAE matches the encoding derived by hand from the DSSE v1 spec', () => {
    // "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body; the spec's own example type/body.
    const type = 'http://example.com/HelloWorld';
    const body = Buffer.from('hello world');
    expect(Buffer.from(dsse.pae(type, body)).toString('latin1')).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    // Lengths are byte lengths, not character counts.
    expect(Buffer.from(dsse.pae('t/é', Buffer.from([0, 0x0a]))).equals(Buffer.concat([Buffer.from('DSSEv1 4 t/'), Buffer.from('é'), Buffer.from(' 2 '), Buffer.from([0, 0x0a])]))).toBe(true);
    expect(Buffer.from(dsse.pae('', new Uint8Array(0))).toString('latin1')).toBe('DSSEv1 0  0 ');
  });

  it('our Ed25519 key handling reproduces RFC 8032 test vector 1', () => {
    const key = privateKeyFromSeed(RFC8032_SECRET);
    expect(rawPublicKey(key).equals(RFC8032_PUBLIC)).toBe(true);
    expect(crypto.sign(null, Buffer.alloc(0), key).equals(RFC8032_SIG)).toBe(true);
  });

  it('sign() signs PAE(payloadType, payload); cross-checked with @noble/curves', () => {
    const payload = Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}');
    const env = dsse.sign('application/vnd.in-toto+json', payload, RFC8032_SECRET);
    expect(env.payloadType).toBe('application/vnd.in-toto+json');
    expect(Buffer.from(env.payload, 'base64').equals(payload)).toBe(true);
    expect(env.signatures).toHaveLength(1);
    expect(env.signatures[0]!.keyid).toBe(keyIdOf(RFC8032_PUBLIC));
    const expected = ed25519.sign(dsse.pae('application/vnd.in-toto+json', payload), RFC8032_SECRET);
    expect(env.signatures[0]!.sig).toBe(Buffer.from(expected).toString('base64'));
    expect(dsse.verify(env, RFC8032_PUBLIC)).toBe(true);
  });

  it('verify() rejects a changed payload, type, signature or key', () => {
    const env = dsse.sign('text/plain', Buffer.from('abc'), RFC8032_SECRET);
    expect(dsse.verify({ ...env, payload: Buffer.from('abd').toString('base64') }, RFC8032_PUBLIC)).toBe(false);
    expect(dsse.verify({ ...env, payloadType: 'text/html' }, RFC8032_PUBLIC)).toBe(false);
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    sig[5]! ^= 1;
    expect(dsse.verify({ ...env, signatures: [{ keyid: env.signatures[0]!.keyid, sig: sig.toString('base64') }] }, RFC8032_PUBLIC)).toBe(false);
    const other = crypto.generateKeyPairSync('ed25519').publicKey;
    expect(dsse.verify(env, other)).toBe(false);
    // keyids are only hints: a keyid naming another key neither helps nor hurts.
    expect(dsse.verify({ ...env, signatures: [{ keyid: keyIdOf(other), sig: env.signatures[0]!.sig }] }, RFC8032_PUBLIC)).toBe(true);
    expect(dsse.verify({ payloadType: 'x' } as never, RFC8032_PUBLIC)).toBe(false);
  });
});
