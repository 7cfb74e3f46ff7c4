import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { IN_TOTO_PAYLOAD_TYPE, isEnvelope, payloadOf, sign, type DsseEnvelope } from './dsse.js';
import { sha256 } from './hash.js';

/**
 * A checkpoint is one line of `*.checkpoints.ndjson`: a DSSE envelope
 * (payloadType application/vnd.in-toto+json) around an in-toto Statement v1.
 * Consecutive checkpoints are hash-linked (prev_checkpoint_sha256 is the
 * SHA-256 of the previous checkpoint *line*) and carry the RFC 9162
 * consistency proof from the previous tree size, so a verifier can check the
 * whole history of tree heads without touching the events.
 */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const CHECKPOINT_PREDICATE_TYPE = 'https://agent-witness.dev/ledger/checkpoint/v1';
/** Subject digest key: the RFC 9162 tree head is not a digest of file bytes, so it gets its own name. */
export const TREE_HEAD_DIGEST = 'rfc9162_sha256';

export type CheckpointReason = 'count' | 'time' | 'window' | 'shutdown' | 'restart' | 'append' | 'rotate' | 'gap';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const counterMap = z.record(z.string(), z.number());

export const checkpointPredicateSchema = z.object({
  log: z.enum(['session', 'global', 'daemon']),
  log_id: z.string().min(1),
  index: z.number().int().nonnegative(),
  reason: z.enum(['count', 'time', 'window', 'shutdown', 'restart', 'append', 'rotate', 'gap']),
  tree_size: z.number().int().nonnegative(),
  root_hash: hex64,
  chain_head: hex64,
  frontier: z.array(hex64),
  events_file: z.string().min(1),
  events_bytes: z.number().int().nonnegative(),
  prev_checkpoint_sha256: hex64.nullable(),
  prev_tree_size: z.number().int().nonnegative(),
  consistency_proof: z.array(hex64),
  counters: counterMap,
  drops: counterMap,
  sensor_boot_id: z.string(),
  restart_count: z.number().int().nonnegative(),
  time: z.string(),
  public_key: z.string().min(1),
  session_sha256: hex64.optional(),
});

export type CheckpointPredicate = z.infer<typeof checkpointPredicateSchema>;

const statementSchema = z.object({
  _type: z.literal(STATEMENT_TYPE),
  subject: z.array(z.object({ name: z.string(), digest: z.record(z.string(), z.string()) })).min(1),
  predicateType: z.literal(CHECKPOINT_PREDICATE_TYPE),
  predicate: checkpointPredicateSchema,
});

export interface ParsedCheckpoint {
  envelope: DsseEnvelope;
  predicate: CheckpointPredicate;
  /** SHA-256 of the line's bytes (what the next checkpoint links to). */
  lineSha256: string;
}

export function signCheckpoint(predicate: CheckpointPredicate, key: KeyObject, keyid: string): string {
  const statement = {
    _type: STATEMENT_TYPE,
    subject: [{ name: `${predicate.log}:${predicate.log_id}`, digest: { [TREE_HEAD_DIGEST]: predicate.root_hash } }],
    predicateType: CHECKPOINT_PREDICATE_TYPE,
    predicate,
  };
  const envelope = sign(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement), 'utf8'), key, keyid);
  return JSON.stringify(envelope);
}

/** Parses one checkpoint line (no newline); returns a reason string when malformed. Signature is not checked here. */
export function parseCheckpointLine(line: Buffer | string): ParsedCheckpoint | string {
  const bytes = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
  let envelope: unknown;
  try {
    envelope = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'checkpoint is not JSON';
  }
  if (!isEnvelope(envelope)) return 'checkpoint is not a DSSE envelope';
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return `unexpected payloadType ${envelope.payloadType}`;
  let statement: unknown;
  try {
    statement = JSON.parse(payloadOf(envelope).toString('utf8'));
  } catch {
    return 'checkpoint payload is not JSON';
  }
  const parsed = statementSchema.safeParse(statement);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `checkpoint statement invalid at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'unknown'}`;
  }
  const subjectDigest = parsed.data.subject[0]!.digest[TREE_HEAD_DIGEST];
  if (subjectDigest !== parsed.data.predicate.root_hash) return 'statement subject digest differs from predicate root_hash';
  return { envelope, predicate: parsed.data.predicate, lineSha256: sha256(bytes).toString('hex') };
}
