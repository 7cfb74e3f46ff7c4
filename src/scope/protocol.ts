import { z } from 'zod';
import type { Scope } from './registry.js';

/**
 * The scope socket's wire format: one JSON object per line each way.
 * Requests are validated strictly; a bad one gets `{"ok":false,"error":...}`
 * and the connection (and the server) carry on. docs/scopes.md documents it.
 */

export const DEFAULT_SCOPE_SOCKET = '/run/agent-witness/scope.sock';
export const MAX_REQUEST_BYTES = 64 * 1024;

export function scopeSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.WITNESS_SCOPE_SOCKET;
  return p !== undefined && p !== '' ? p : DEFAULT_SCOPE_SOCKET;
}

// ids are opaque to us but end up in NDJSON, the store and terminals: no control characters
const id = z.string().min(1).max(256).regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

export const openRequestSchema = z.object({
  op: z.literal('open'),
  run_id: id,
  session_id: id,
  tool_call_id: id,
  tool_name: id.optional(),
  pid: z.number().int().min(1).max(0x3fffffff).optional(),
  cgroup: z.string().min(1).max(4096).startsWith('/', 'cgroup must be a path under the cgroup2 mount, starting with /').optional(),
  ttl_seconds: z.number().positive().max(7 * 86_400).optional(),
}).strict().refine((r) => (r.pid === undefined) !== (r.cgroup === undefined), { message: 'give exactly one of pid or cgroup', path: ['pid'] });

export const closeRequestSchema = z.object({
  op: z.literal('close'),
  tool_call_id: id,
  run_id: id.optional(),
}).strict();

export const listRequestSchema = z.object({ op: z.literal('list') }).strict();
export const pingRequestSchema = z.object({ op: z.literal('ping') }).strict();

export const scopeRequestSchema = z.discriminatedUnion('op', [openRequestSchema, closeRequestSchema, listRequestSchema, pingRequestSchema]);
export type ScopeRequest = z.infer<typeof scopeRequestSchema>;

export interface WireScope {
  run_id: string;
  session_id: string;
  tool_call_id: string;
  tool_name: string | null;
  pid: number | null;
  cgroup: string | null;
  opened_ns: string;
  closed_ns: string | null;
  expires_ns: string | null;
}

export type ScopeResponse =
  | { ok: true; scope?: WireScope; scopes?: WireScope[] }
  | { ok: false; error: { code: 'bad_request' | 'too_large' | 'rejected' | 'internal'; message: string; field?: string } };

export function wireScope(s: Scope): WireScope {
  return {
    run_id: s.runId, session_id: s.sessionId, tool_call_id: s.toolCallId, tool_name: s.toolName,
    pid: s.pid, cgroup: s.cgroupPath,
    opened_ns: s.openedNs.toString(), closed_ns: s.closedNs?.toString() ?? null, expires_ns: s.expiresNs?.toString() ?? null,
  };
}
