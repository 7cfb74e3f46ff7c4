import { z } from 'zod';
import { providerRuleSchema } from '../sensor/llm.js';
import { parseCidr } from './cidr.js';

/**
 * agents.json: which processes are which agent, and what each agent is
 * declared to do. Every object is strict so a misspelt key is an error, not
 * a silently ignored rule. docs/manifest.md is the prose version.
 */

export const UNATTRIBUTED = 'unattributed';

const agentName = z.string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'agent name must be 1-63 characters of letters, digits, ".", "_" or "-", starting with a letter or digit')
  .refine((n) => n !== UNATTRIBUTED, `'${UNATTRIBUTED}' is reserved for processes no agent claims; pick another name`);

const absolutePath = (what: string) => z.string().min(1).refine((p) => p.startsWith('/'), `${what} must be an absolute path (start with '/')`);
const sensitivePath = z.string().min(1).refine((p) => p.startsWith('/') || p.startsWith('~/'), "a sensitive path must be absolute or start with '~/' (every login user's home)");

export const matchRuleSchema = z.object({
  /** exact realpath of the executable */
  executable: absolutePath('executable').optional(),
  /** SHA-256 of the executable, lower-case hex */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lower-case hex digits').optional(),
  uid: z.number().int().min(0).max(0xffff_ffff).optional(),
  /** cgroup v2 path prefix, matched on whole components (/system.slice/a matches /system.slice/a/b, not /system.slice/ab) */
  cgroup: absolutePath('cgroup').optional(),
  /** systemd unit the process runs in, e.g. "coder.service" */
  unit: z.string().regex(/^[^/\s]+\.(service|scope|socket|mount|swap|timer)$/, 'unit must be a systemd unit name such as "coder.service"').optional(),
}).strict().refine((r) => Object.keys(r).length > 0, 'a match rule needs at least one of executable, sha256, uid, cgroup, unit');

const hostname = z.string().regex(/^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$/,
  'hostname must be a DNS name, optionally starting with "*." for any subdomain');

const cidr = z.string().superRefine((text, ctx) => {
  const parsed = parseCidr(text);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: `bad CIDR '${text}': ${parsed.error}; write it like "10.0.0.0/8" or "2001:db8::/32"` });
});

export const egressSchema = z.object({
  cidrs: z.array(cidr).default([]),
  hostnames: z.array(hostname).default([]),
  /** connections to 127.0.0.0/8 and ::1 are declared too */
  loopback: z.boolean().default(false),
}).strict();

export const agentSchema = z.object({
  name: agentName,
  description: z.string().optional(),
  match: z.array(matchRuleSchema).min(1, 'an agent needs at least one match rule'),
  egress: egressSchema.default({ cidrs: [], hostnames: [], loopback: false }),
  /** extra paths whose reads the sensor reports (added to the defaults) */
  sensitive_paths: z.array(sensitivePath).default([]),
  /** sensitive paths (or their parents) this agent is declared to read: no finding */
  allowed_sensitive_reads: z.array(sensitivePath).default([]),
}).strict();

export const manifestSchema = z.object({
  version: z.literal(1, 'version must be 1'),
  agents: z.array(agentSchema),
  sensitive_paths: z.array(sensitivePath).default([]),
  /** how often declared hostnames are resolved again */
  resolve_interval_seconds: z.number().int().min(10).max(86_400).default(300),
  /** extra rows for the model-provider table (docs/network.md), tried before the defaults */
  llm_providers: z.array(providerRuleSchema).default([]),
}).strict().superRefine((m, ctx) => {
  const seen = new Map<string, number>();
  m.agents.forEach((a, i) => {
    const first = seen.get(a.name);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['agents', i, 'name'], message: `duplicate agent name '${a.name}' (also agents[${first}]); agent names must be unique` });
    } else {
      seen.set(a.name, i);
    }
  });
});

export type MatchRule = z.infer<typeof matchRuleSchema>;
export type AgentDeclaration = z.infer<typeof agentSchema>;
export type Manifest = z.infer<typeof manifestSchema>;
