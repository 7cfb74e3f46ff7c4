import { WitnessError } from '../errors.js';
import { verifyConsistency } from '../ledger/merkle.js';
import { decodeBase64Strict, type NoteSignerKey, type NoteVerifierKey } from '../ledger/note-keys.js';
import { openNote, splitNote } from '../ledger/note.js';
import { sign as cosign } from '../ledger/cosignature.js';
import { parse as parseCheckpoint } from '../ledger/tlog-checkpoint.js';
import { log } from '../log.js';
import type { CosignerState } from './state.js';

/**
 * POST <prefix>/add-checkpoint, exactly as c2sp.org/tlog-witness says:
 *   body  "old <size>\n" (<base64 hash>\n){0,63} "\n" <checkpoint note>
 *   404 unknown origin · 403 no signature from a trusted key · 400 old > size (or malformed)
 *   409 old size != the size last cosigned (body "<size>\n", text/x.tlog.size),
 *       or same size with a different root · 422 consistency proof does not verify
 *       (a non-empty proof from size 0 included) · 200 cosignature line(s)
 * Check-and-persist is serialized per origin, so two racing requests cannot
 * roll the stored size back (the race the spec describes).
 */
export interface WitnessResponse { status: number; body: string; contentType: string }

export interface AddCheckpointContext {
  state: CosignerState;
  key: NoteSignerKey;
  /** Trusted log keys by origin (the vkey name is the origin). */
  logs: Map<string, NoteVerifierKey[]>;
  now: () => number;
}

const MAX_PROOF_LINES = 63;
const text = (status: number, body: string): WitnessResponse => ({ status, body: body.endsWith('\n') ? body : `${body}\n`, contentType: 'text/plain; charset=utf-8' });
const sizeConflict = (size: number): WitnessResponse => ({ status: 409, body: `${size}\n`, contentType: 'text/x.tlog.size' });

interface Request { old: number; proof: Uint8Array[]; note: string }

function parseRequest(body: string): Request | string {
  const nl = body.indexOf('\n');
  const m = /^old (0|[1-9][0-9]*)$/.exec(nl < 0 ? body : body.slice(0, nl));
  if (!m || !Number.isSafeInteger(Number(m[1]))) return 'first line must be "old <size>" without leading zeroes';
  const proof: Uint8Array[] = [];
  let at = nl + 1;
  for (;;) {
    const end = body.indexOf('\n', at);
    if (end < 0) return 'missing empty line before the checkpoint';
    const line = body.slice(at, end);
    at = end + 1;
    if (line === '') break;
    const h = decodeBase64Strict(line);
    if (h === null || h.length !== 32) return 'consistency proof lines must be base64 SHA-256 hashes';
    proof.push(h);
    if (proof.length > MAX_PROOF_LINES) return `more than ${MAX_PROOF_LINES} consistency proof lines`;
  }
  return { old: Number(m[1]), proof, note: body.slice(at) };
}

export async function addCheckpoint(ctx: AddCheckpointContext, body: string): Promise<WitnessResponse> {
  const req = parseRequest(body);
  if (typeof req === 'string') return text(400, req);
  let cpText: string;
  let cp: ReturnType<typeof parseCheckpoint>;
  try {
    cpText = splitNote(req.note).text;
    cp = parseCheckpoint(cpText);
  } catch (e) {
    return text(400, (e as Error).message);
  }
  const keys = ctx.logs.get(cp.origin);
  if (!keys) return text(404, `unknown origin ${cp.origin}`);
  try {
    openNote(req.note, keys);
  } catch (e) {
    if (e instanceof WitnessError) return text(403, `no valid signature from a trusted key: ${e.message}`);
    throw e;
  }
  return ctx.state.serialize(cp.origin, async () => {
    const stored = ctx.state.get(cp.origin);
    const storedSize = stored?.size ?? 0;
    const refuse = (r: WitnessResponse, reason: string): WitnessResponse => {
      // The signature verified: this request is evidence of what the log claimed.
      ctx.state.refuse({ time: ctx.now(), status: r.status, origin: cp.origin, reason, stored_size: storedSize, request: body });
      log.warn({ origin: cp.origin, status: r.status, reason, storedSize, size: cp.size, old: req.old }, 'cosigner refused a checkpoint');
      return r;
    };
    if (req.old > cp.size) return refuse(text(400, `old size ${req.old} is larger than the checkpoint size ${cp.size}`), 'old > size');
    if (req.old !== storedSize) return refuse(sizeConflict(storedSize), `old size ${req.old} is not the size last cosigned (${storedSize})`);
    const newRoot = Buffer.from(cp.rootHash);
    if (req.old === 0) {
      if (req.proof.length !== 0) return refuse(text(422, 'the consistency proof must be empty from size 0'), 'non-empty proof from size 0');
    } else {
      const oldRoot = Buffer.from(stored!.root, 'base64');
      if (req.old === cp.size && !oldRoot.equals(newRoot)) {
        return refuse(sizeConflict(storedSize), `same size ${cp.size} with a different root hash (fork)`);
      }
      if (!verifyConsistency(req.old, cp.size, oldRoot, newRoot, req.proof)) {
        return refuse(text(422, `consistency proof from ${req.old} to ${cp.size} does not verify`), 'consistency proof does not verify');
      }
    }
    const now = ctx.now();
    const line = cosign(cpText, ctx.key, now);
    await ctx.state.put({ origin: cp.origin, size: cp.size, root: newRoot.toString('base64'), checkpoint: req.note, cosignature: line, cosigned_at: now });
    return { status: 200, body: line, contentType: 'text/plain; charset=utf-8' };
  });
}
