import { WitnessError } from '../errors.js';
import { decodeBase64Strict, isWellFormed } from './note-keys.js';
import { hasControlChars } from './note.js';

/**
 * c2sp.org/tlog-checkpoint note text:
 *   <origin>\n<tree size, ASCII decimal, no leading zeroes>\n<base64 RFC 6962 root>\n[<extension line>\n]*
 */
export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  extensions?: string[];
}

const bad = (field: string, why: string): WitnessError => new WitnessError('E_LEDGER', `malformed checkpoint: ${why}`, { field });
const DECIMAL = /^(0|[1-9][0-9]*)$/;

function rootBytes(root: Uint8Array | string): Uint8Array {
  if (typeof root !== 'string') return root;
  if (/^[0-9a-f]{64}$/.test(root)) return Buffer.from(root, 'hex');
  return decodeBase64Strict(root) ?? new Uint8Array(0);
}

export function format(cp: { origin: string; size: number; rootHash: Uint8Array | string; extensions?: string[] }): string {
  const root = rootBytes(cp.rootHash);
  if (cp.origin === '' || cp.origin.includes('\n') || hasControlChars(cp.origin) || !isWellFormed(cp.origin)) throw bad('origin', 'origin must be one non-empty line');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw bad('size', 'size must be a non-negative integer');
  if (root.length !== 32) throw bad('rootHash', 'root hash must be 32 bytes');
  const ext = cp.extensions ?? [];
  for (const e of ext) if (e === '' || e.includes('\n') || hasControlChars(e) || !isWellFormed(e)) throw bad('extensions', 'extension lines must be non-empty single lines');
  return `${cp.origin}\n${cp.size}\n${Buffer.from(root).toString('base64')}\n${ext.map((e) => `${e}\n`).join('')}`;
}

/** Strict parse of a checkpoint body (the note text, without signatures). */
export function parse(text: string): Required<Checkpoint> {
  if (!isWellFormed(text)) throw bad('text', 'not valid UTF-8');
  if (hasControlChars(text)) throw bad('text', 'control character');
  if (!text.endsWith('\n')) throw bad('text', 'must end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw bad('text', 'needs origin, size and root hash lines');
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin === '') throw bad('origin', 'empty origin');
  if (!DECIMAL.test(size)) throw bad('size', `'${size.slice(0, 30)}' is not a decimal without leading zeroes`);
  const n = Number(size);
  if (!Number.isSafeInteger(n)) throw bad('size', 'tree size beyond 2^53');
  const rootHash = decodeBase64Strict(root);
  if (rootHash === null || rootHash.length !== 32) throw bad('rootHash', 'root hash must be base64 of 32 bytes');
  if (extensions.some((e) => e === '')) throw bad('extensions', 'empty extension line');
  return { origin, size: n, rootHash, extensions };
}
