import crypto from 'node:crypto';
import { checkpoint, merkle } from '../../src/index.js';
import { encodeSignerKey, encodeVerifierKey, parseSignerKey, parseVerifierKey, type NoteSignerKey, type NoteVerifierKey } from '../../src/ledger/note-keys.js';
import { sign as signNote } from '../../src/ledger/note.js';
import { rawPublicKey } from '../../src/ledger/keys.js';

export interface TestKey { signer: NoteSignerKey; verifier: NoteVerifierKey; vkey: string }

export function testKey(name: string, alg: 1 | 4): TestKey {
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const vkey = encodeVerifierKey(name, alg, rawPublicKey(privateKey));
  return { signer: parseSignerKey(encodeSignerKey(name, alg, privateKey)), verifier: parseVerifierKey(vkey), vkey };
}

export const leaves = (n: number, tag = 'leaf'): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from(`${tag} ${i}`));

/** A signed checkpoint note over the first `size` leaves. */
export function signedCheckpoint(key: NoteSignerKey, all: Buffer[], size: number, origin = key.name): { note: string; body: string } {
  const body = checkpoint.format({ origin, size, rootHash: merkle.rootHash(all.slice(0, size)) });
  return { note: signNote(body, key), body };
}

export function addBody(old: number, proof: Uint8Array[], note: string): string {
  return `old ${old}\n${proof.map((p) => `${Buffer.from(p).toString('base64')}\n`).join('')}\n${note}`;
}

export async function post(url: string, body: string): Promise<{ status: number; text: string; type: string | null }> {
  const r = await fetch(`${url}/add-checkpoint`, { method: 'POST', body });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
}
