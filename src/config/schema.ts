import { z } from 'zod';
import { providerRuleSchema } from '../sensor/llm.js';
import { parseDuration } from '../pulse/duration.js';

/**
 * The daemon's config file (JSON; deploy/witness.json is the annotated
 * example, docs/deployment.md the reference). Every object is strict: an
 * unknown key is an error naming it, so a typo never silently falls back to
 * a default. Durations are strings like `30s`, `15m`, `7d`.
 */
const duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^duration: /, '') });
    return z.NEVER;
  }
});

const absolutePath = z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute path');
const positiveInt = z.number().int().positive();

const sensorSchema = z.strictObject({
  ringBytes: positiveInt.refine((n) => (n & (n - 1)) === 0 && n >= 4096, 'must be a power of two >= 4096').optional(),
  maxLatencyMs: positiveInt.max(10_000).optional(),
  sensitivePaths: z.array(absolutePath).optional(),
  // fairness under flood (bpf/budget.bpf.h); 0 turns the budget off
  budgetEvents: z.number().int().min(0).max(1_000_000_000).optional(),
  budgetWindowMs: positiveInt.max(3_600_000).optional(),
  ringSharePct: z.number().int().min(1).max(100).optional(),
  tracedMax: positiveInt.max(1 << 24).optional(),
  // TLS plaintext metadata from OpenSSL uprobes, host-wide (docs/privacy.md); content needs metadata
  tlsMetadata: z.boolean().optional(),
  tlsContent: z.boolean().optional(),
}).refine((s) => !s.tlsContent || s.tlsMetadata === true, { message: 'tlsContent needs tlsMetadata: true', path: ['tlsContent'] });

const storeSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Events older than this are deleted (default 7d). */
  maxAge: duration.default(7 * 86_400_000),
  /** The events table is trimmed, oldest first, past this size (default 1 GiB). */
  maxBytes: positiveInt.default(1 << 30),
  maxQueued: positiveInt.default(100_000),
  /** NDJSON text waiting for the store at most (UTF-16 units; default 32 Mi): a bound on memory whatever the lines' size */
  maxQueuedBytes: positiveInt.default(32 << 20),
});

const stdoutSchema = z.strictObject({
  enabled: z.boolean().default(true),
  maxQueuedBytes: positiveInt.default(8 << 20),
});

const fileSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** required when enabled (checked below): a disabled section need not name a destination */
  dir: absolutePath.optional(),
  prefix: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only').default('witness'),
  maxBytes: positiveInt.default(64 << 20),
  maxAge: duration.default(3_600_000),
  keep: z.number().int().min(0).default(0),
  maxQueued: positiveInt.default(100_000),
  /** NDJSON text waiting for the disk at most (UTF-16 units; default 32 Mi) */
  maxQueuedBytes: positiveInt.default(32 << 20),
}).superRefine((f, ctx) => {
  if (f.enabled && f.dir === undefined) ctx.addIssue({ code: 'custom', path: ['dir'], message: 'required when the file exporter is enabled' });
});

const otlpSchema = z.strictObject({
  enabled: z.boolean().default(true),
  endpoint: z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL').optional(),
  headers: z.record(z.string(), z.string()).default({}),
  batchSize: positiveInt.max(10_000).default(512),
  maxQueued: positiveInt.default(50_000),
  timeout: duration.default(10_000),
  initialBackoff: duration.default(500),
  maxBackoff: duration.default(30_000),
}).superRefine((o, ctx) => {
  if (o.enabled && o.endpoint === undefined) ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'required when the OTLP exporter is enabled' });
});

const pulseSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** PulseOptionsInput (docs/pulse.md); validated by the engine's own schema at load. */
  options: z.record(z.string(), z.unknown()).default({}),
  tick: duration.default(1000),
});

const ledgerSchema = z.strictObject({
  /** On by default: the daemon's evidence is the signed ledger (docs/ledger.md). */
  enabled: z.boolean().default(true),
  signKeyPath: absolutePath.optional(),
  segmentMaxBytes: positiveInt.optional(),
  segmentMaxAge: duration.optional(),
  /** Sealed daemon segments are pruned, oldest first, past this total size (default 4 GiB)... */
  maxBytes: positiveInt.default(4 * 1024 ** 3),
  /** ...or this age (default 90d). Only sealed segments; each prune is a host-ledger row. */
  maxAge: duration.default(90 * 86_400_000),
  /** Failing to write longer than this stops the systemd watchdog pets, so systemd restarts the daemon (default 60s). */
  failureTimeout: duration.default(60_000),
  /** How often a failed ledger retries the disk (default 1s). */
  retryInterval: duration.default(1000),
});

export const daemonConfigSchema = z.strictObject({
  /** Overrides $WITNESS_STATE_DIR / /var/lib/agent-witness. */
  stateDir: absolutePath.optional(),
  /** Agent manifest; reloaded on SIGHUP. */
  manifest: absolutePath.optional(),
  /** Unix socket where `witness scope` opens and closes scopes. */
  scopeSocket: absolutePath.optional(),
  /** Unix socket where `witness run` asks the daemon to trace its agent (docs/resident.md); false: none. */
  residentSocket: z.union([absolutePath, z.literal(false)]).optional(),
  heartbeat: duration.default(10_000),
  sensor: sensorSchema.default({}),
  store: storeSchema.default(storeSchema.parse({})),
  export: z.strictObject({
    stdout: stdoutSchema.optional(),
    file: fileSchema.optional(),
    otlp: otlpSchema.optional(),
  }).default({}),
  pulse: pulseSchema.default(pulseSchema.parse({})),
  ledger: ledgerSchema.default(ledgerSchema.parse({})),
  /** extra rows for the model-provider table (docs/network.md), tried before the defaults */
  llmProviders: z.array(providerRuleSchema).default([]),
  /** C2SP witnesses the continuity log's checkpoints are pushed to (docs/continuity.md). */
  witnesses: z.array(z.strictObject({ url: z.string().regex(/^https?:\/\//), vkey: absolutePath })).default([]),
});

export type DaemonConfig = z.output<typeof daemonConfigSchema>;
export type DaemonConfigInput = z.input<typeof daemonConfigSchema>;
