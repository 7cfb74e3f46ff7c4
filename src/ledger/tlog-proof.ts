import { WitnessError } from '../errors.js';
import { decodeBase64Strict } from './note-keys.js';
import { splitNote } from './note.js';

/**
 * c2sp.org/tlog-proof@v1:
 *   c2sp.org/tlog-proof@v1\n[extra <base64>\n]index <n>\n(<base64 hash>\n)*\n<checkpoint note, verbatim>
 */
export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

export interface TlogProof {
  extra?: Uint8Array;
  index: number;
  inclusionProof: Uint8Array[];
  /** The whole signed checkpoint note (text, blank line, signature lines). */
  checkpoint: string;
}

const bad = (why: string): WitnessError => new WitnessError('E_LEDGER', `malformed tlog-proof: ${why}`, { field: 'tlog-proof' });

export function format(p: TlogProof): string {
  if (!Number.isSafeInteger(p.index) || p.index < 0) throw bad('index must be a non-negative integer');
  splitNote(p.checkpoint);
  const extra = p.extra !== undefined ? `extra ${Buffer.from(p.extra).toString('base64')}\n` : '';
  const proof = p.inclusionProof.map((h) => {
    if (h.length !== 32) throw bad('inclusion proof hashes are 32 bytes');
    return `${Buffer.from(h).toString('base64')}\n`;
  }).join('');
  return `${TLOG_PROOF_HEADER}\n${extra}index ${p.index}\n${proof}\n${p.checkpoint}`;
}

export function parse(text: string): TlogProof {
  const lines = text.split('\n');
  let i = 0;
  if (lines[i++] !== TLOG_PROOF_HEADER) throw bad(`first line must be ${TLOG_PROOF_HEADER}`);
  let extra: Uint8Array | undefined;
  if (lines[i]?.startsWith('extra ')) {
    const e = decodeBase64Strict(lines[i]!.slice(6));
    if (e === null) throw bad('extra is not base64');
    extra = e;
    i++;
  }
  const m = /^index (0|[1-9][0-9]*)$/.exec(lines[i++] ?? '');
  if (!m || !Number.isSafeInteger(Number(m[1]))) throw bad('expected an index line without leading zeroes');
  const inclusionProof: Uint8Array[] = [];
  while (i < lines.length && lines[i] !== '') {
    const h = decodeBase64Strict(lines[i]!);
    if (h === null || h.length !== 32) throw bad(`proof line ${i + 1} is not a base64 SHA-256 hash`);
    inclusionProof.push(h);
    i++;
  }
  if (lines[i] !== '' || i + 1 >= lines.length) throw bad('missing empty line before the checkpoint');
  const checkpoint = lines.slice(i + 1).join('\n');
  splitNote(checkpoint);
  return { ...(extra !== undefined && { extra }), index: Number(m[1]), inclusionProof, checkpoint };
}
