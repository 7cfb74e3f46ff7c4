import { z } from 'zod';
import { RFC3339_NS } from './envelope.js';
import { boundarySchemas, userMemoryKey } from './schemas-boundary.js';
import { netDepthSchemas } from './net-schemas.js';

/**
 * Attribute shapes of the sensor's NDJSON events (docs/ndjson.md is the
 * prose version). Every object is strict: a key the contract does not list
 * is an error, so the mapper cannot drift from the document silently.
 * Optional keys are the ones that appear only in some cases (witness.flags
 * when any flag is set, witness.dns.parse_error when parsing failed).
 */

/** hdr.flags bits in bit order (bit 0 first); unknown bits appear as `bit_N`. */
export const WITNESS_FLAG_NAMES = [
  'argv_truncated', 'path_truncated', 'payload_truncated', 'filename_truncated', 'read_fault', 'relative_path',
  // the boundary (bits 6..8)
  'user_memory', 'fileless_exec', 'arg_rewritten',
  // paths in a chroot (bits 9..10): relative to the task's root; a file outside it
  'chroot', 'outside_root',
] as const;

export const NETWORK_TRANSPORTS = ['tcp', 'udp', 'raw', 'unknown'] as const;
export const NETWORK_TYPES = ['ipv4', 'ipv6'] as const;

const u32 = z.number().int().min(0).max(0xffff_ffff);
const port = z.number().int().min(0).max(0xffff);
const result = z.number().int(); // syscall return: >= 0 or -errno
const decimal = z.string().regex(/^\d+$/);

/**
 * Keys the AttributionEnricher (src/identity/enricher.ts) adds to every
 * event; optional because an envelope straight from toEnvelope has none of
 * them. docs/manifest.md and docs/scopes.md describe them.
 */
export const IDENTITY_SOURCES = ['tree', 'proc', 'kernel'] as const;
export const CONTAINER_RUNTIMES = ['docker', 'containerd', 'cri-o', 'podman', 'kubernetes', 'unknown'] as const;
export const HASH_STATUSES = ['ok', 'pending', 'unavailable'] as const;
const scopeId = z.string().min(1).max(256);
/** `<pid>-<start on the boot clock, ns>` (src/identity/process-table.ts processKey). */
export const PROCESS_KEY_RE = /^\d+-\d+$/;

function attributionKeys() {
  return {
    'process.executable.path': z.string().optional(),
    'process.user.name': z.string().optional(),
    'witness.process.parent_chain': z.array(decimal).optional(),
    'witness.cgroup.path': z.string().startsWith('/').optional(),
    'container.id': z.string().regex(/^[0-9a-f]{64}$/).optional(),
    'container.runtime': z.enum(CONTAINER_RUNTIMES).optional(),
    'k8s.pod.uid': z.string().regex(/^[0-9a-f-]{36}$/).optional(),
    'witness.systemd.unit': z.string().optional(),
    'witness.systemd.user_unit': z.string().optional(),
    'witness.systemd.user_unit.uid': u32.nullable().optional(),
    'witness.identity.source': z.enum(IDENTITY_SOURCES).optional(),
    'witness.process.key': z.string().regex(PROCESS_KEY_RE).optional(),
    'witness.agent': z.string().min(1).optional(),
    'witness.agent.pending': z.literal(true).optional(),
    'witness.scope.run_id': scopeId.optional(),
    'witness.scope.session_id': scopeId.optional(),
    'witness.scope.tool_call_id': scopeId.optional(),
    'witness.scope.tool_name': scopeId.optional(),
  };
}

const common = {
  'process.pid': u32,
  'thread.id': u32,
  'process.user.id': u32,
  'witness.gid': u32,
  'process.command': z.string().max(64),
  'process.linux.cgroup': decimal,
  'witness.flags': z.array(z.union([z.enum(WITNESS_FLAG_NAMES), z.string().regex(/^bit_\d+$/)])).min(1).optional(),
  ...userMemoryKey,
  ...attributionKeys(),
};

const transport = z.enum(NETWORK_TRANSPORTS);
const networkType = z.enum(NETWORK_TYPES).nullable();

export const execAttributes = z.object({
  ...common,
  'process.parent_pid': u32,
  'process.executable.path': z.string(),
  'process.command_args': z.array(z.string()),
  'witness.exec.filename': z.string(),
  'process.working_directory': z.string(),
  'witness.process.root': z.string().optional(),
  'witness.argc': u32,
  'witness.euid': u32,
  'witness.egid': u32,
  'witness.executable.sha256': z.string().regex(/^[0-9a-f]{64}$/).nullable().optional(),
  'witness.executable.hash_status': z.enum(HASH_STATUSES).optional(),
}).strict();

export const exitAttributes = z.object({
  ...common,
  'process.parent_pid': u32,
  'process.exit.code': z.number().int().min(0).max(255).nullable(),
  'witness.exit.signal': z.number().int().min(1).max(127).nullable(),
  'witness.exit.core_dumped': z.boolean(),
}).strict();

const net = netDepthSchemas(common);

export const connectAttributes = z.object({
  ...common,
  ...net.serverAddress,
  'network.transport': transport,
  'network.type': networkType,
  'network.peer.address': z.string().nullable(),
  'network.peer.port': port,
  'witness.result': result,
  'witness.fd': u32,
}).strict();

export const dnsAttributes = z.object({
  ...common,
  'dns.question.name': z.string().nullable(),
  'witness.dns.questions': z.array(z.string()),
  'witness.dns.type': z.string().nullable(),
  'witness.dns.id': z.number().int().min(0).max(0xffff).nullable(),
  'witness.dns.truncated': z.boolean(),
  'witness.dns.syscall': z.string(),
  'witness.dns.parse_error': z.string().optional(),
  'network.peer.address': z.string().nullable(),
  'network.peer.port': port,
  'network.transport': transport,
  'network.type': networkType,
}).strict();

const openFlags = z.array(z.string().regex(/^(O_[A-Z_]+|0x[0-9a-f]+)$/)).min(1);
const octalMode = z.string().regex(/^[0-7]{4,}$/);

export const fileOpenAttributes = z.object({
  ...common,
  'file.path': z.string(),
  'witness.result': result,
  'witness.open.flags': openFlags,
  'witness.open.mode': octalMode.optional(), // only when the open can create (O_CREAT, O_TMPFILE)
}).strict();

export const unlinkAttributes = z.object({
  ...common,
  'file.path': z.string(),
  'witness.result': result,
}).strict();

export const renameAttributes = z.object({
  ...common,
  'file.path': z.string(),
  'witness.file.old_path': z.string(),
  'witness.rename.flags': z.array(z.string().regex(/^(RENAME_[A-Z]+|0x[0-9a-f]+)$/)),
  'witness.result': result,
}).strict();

const ids = z.array(decimal).length(3);

export const setidAttributes = z.object({
  ...common,
  'witness.syscall': z.string(),
  'witness.ids.old': ids,
  'witness.ids.new': ids,
  'witness.result': result,
}).strict();

export const ptraceAttributes = z.object({
  ...common,
  'witness.ptrace.request': z.string().regex(/^(PTRACE_[A-Z_]+|-?\d+)$/),
  'witness.ptrace.target_pid': u32,
  'witness.result': result,
}).strict();

export const bindAttributes = z.object({
  ...common,
  'network.local.address': z.string().nullable(),
  'network.local.port': port,
  'network.transport': transport,
  'network.type': networkType,
  'witness.result': result,
  'witness.fd': u32,
}).strict();

export const scopeOverflowAttributes = z.object({
  ...common,
  'witness.escaped.pid': u32,
  'witness.traced.root_pid': u32,
  'witness.traced.depth': u32,
  'witness.result': result,
}).strict();

export const suppressedAttributes = z.object({
  ...common,
  'witness.suppressed.kind': z.string(),
  'witness.suppressed.key': z.string().nullable(),
  'witness.suppressed.key_truncated': z.boolean(),
  'witness.suppressed.key_hash': z.string().regex(/^[0-9a-f]{16}$/),
  'witness.suppressed.count': z.number().int().min(1),
  'witness.suppressed.from': z.string().regex(RFC3339_NS),
  'witness.suppressed.to': z.string().regex(RFC3339_NS),
  'witness.suppressed.window_ms': z.number().min(0),
  'witness.suppressed.budget': z.number().int().min(0),
  'witness.suppressed.final': z.boolean(),
}).strict();

/** Attribute schema per sensor event name (sensor.heartbeat is the control plane's, not the decoder's). */
export const sensorAttributeSchemas = {
  'process.exec': execAttributes,
  'process.exit': exitAttributes,
  'network.connect': connectAttributes,
  'dns.query': dnsAttributes,
  'file.write': fileOpenAttributes,
  'file.read_sensitive': fileOpenAttributes,
  'file.unlink': unlinkAttributes,
  'file.rename': renameAttributes,
  'security.setuid': setidAttributes,
  'security.setgid': setidAttributes,
  'security.ptrace': ptraceAttributes,
  'security.bind': bindAttributes,
  ...boundarySchemas(common),
  'sensor.scope_overflow': scopeOverflowAttributes,
  'sensor.suppressed': suppressedAttributes,
  ...net.sensor,
} as const;

/** Envelopes NetDepth builds from several records (tls.client_hello, llm.call) and its finding. */
export const netDerivedSchemas = net.derived;

export type DecodedEventName = keyof typeof sensorAttributeSchemas;

const time = z.string().regex(RFC3339_NS, 'time must be RFC 3339 UTC with nanoseconds');

function variant<N extends DecodedEventName>(name: N) {
  return z.object({ time, event: z.literal(name), attributes: sensorAttributeSchemas[name] }).strict();
}

/** One NDJSON line produced from a kernel record, validated down to its attributes. */
export const sensorEnvelopeSchema = z.discriminatedUnion('event', [
  variant('process.exec'), variant('process.exit'), variant('network.connect'), variant('dns.query'),
  variant('file.write'), variant('file.read_sensitive'), variant('file.unlink'), variant('file.rename'),
  variant('security.setuid'), variant('security.setgid'), variant('security.ptrace'), variant('security.bind'),
  variant('security.kill'), variant('security.io_uring'), variant('security.link'), variant('security.symlink'),
  variant('security.chmod'), variant('security.memfd'), variant('security.module'), variant('security.bpf'),
  variant('security.mount'), variant('security.namespace'),
  variant('sensor.scope_overflow'), variant('sensor.suppressed'),
  variant('dns.answer'), variant('network.close'), variant('network.unix_connect'), variant('network.listen'), variant('network.accept'),
]);

export type SensorEnvelope = z.infer<typeof sensorEnvelopeSchema>;

/**
 * A compact record (src/events/compact.ts): the same shapes with the process
 * context keys and thread.id left out; `witness.process.key` is required,
 * because it is what the context is joined by. Joined, it must pass
 * sensorEnvelopeSchema.
 */
const COMPACT_OMITTED = {
  'thread.id': true, 'process.user.id': true, 'witness.gid': true, 'process.command': true, 'process.linux.cgroup': true,
  'process.executable.path': true,
} as const;

function compactVariant<N extends DecodedEventName>(name: N) {
  const attrs = (sensorAttributeSchemas[name] as z.ZodObject<z.ZodRawShape>).partial(COMPACT_OMITTED).extend({ 'witness.process.key': z.string().regex(PROCESS_KEY_RE) });
  return z.object({ time, event: z.literal(name), attributes: attrs }).strict();
}

/** Every decoded kind, derived from sensorAttributeSchemas: a kind added there is covered here without a change. */
export const compactSensorEnvelopeSchema = z.discriminatedUnion('event',
  (Object.keys(sensorAttributeSchemas) as DecodedEventName[]).map((n) => compactVariant(n)) as unknown as
    [ReturnType<typeof compactVariant>, ...ReturnType<typeof compactVariant>[]]);

/**
 * Findings the AttributionEnricher raises (docs/manifest.md): the offending
 * process's identity, `witness.agent`, the event that caused it and why.
 */
const findingCommon = {
  'process.pid': u32,
  'process.parent_pid': u32,
  'process.command': z.string().max(64),
  'process.user.id': u32,
  ...attributionKeys(),
  'witness.agent': z.string().min(1),
  'witness.finding.source_event': z.string(),
  'witness.finding.reason': z.string().min(1),
  ...userMemoryKey,
};

export const findingAttributeSchemas = {
  'finding.unattributed_process': z.object({ ...findingCommon, 'process.command_args': z.array(z.string()) }).strict(),
  'finding.undeclared_egress': z.object({
    ...findingCommon,
    'network.peer.address': z.string(),
    'network.peer.port': port,
    'network.transport': transport.nullable(),
    'witness.result': result,
  }).strict(),
  'finding.sensitive_read': z.object({ ...findingCommon, 'file.path': z.string(), 'witness.result': result }).strict(),
  // the boundary (src/identity/boundary-findings.ts)
  'finding.io_uring': z.object({ ...findingCommon, 'witness.io_uring.opcode': z.string() }).strict(),
  'finding.sensitive_link': z.object({ ...findingCommon, 'file.path': z.string(), 'witness.link.target': z.string(), 'witness.result': result }).strict(),
  'finding.chmod': z.object({ ...findingCommon, 'file.path': z.string(), 'witness.chmod.mode': z.string().regex(/^[0-7]{4}$/), 'witness.result': result }).strict(),
  'finding.fileless_exec': z.object({ ...findingCommon }).strict(),
  'finding.kernel_module': z.object({ ...findingCommon, 'file.path': z.string(), 'witness.syscall': z.string(), 'witness.result': result }).strict(),
  'finding.bpf_program': z.object({ ...findingCommon, 'witness.bpf.cmd': z.string(), 'witness.result': result }).strict(),
  'finding.mount': z.object({ ...findingCommon, 'file.path': z.string(), 'witness.syscall': z.string(), 'witness.result': result }).strict(),
  'finding.namespace': z.object({ ...findingCommon, 'witness.syscall': z.string(), 'witness.result': result }).strict(),
  'finding.chroot_escape': z.object({ ...findingCommon, 'file.path': z.string() }).strict(),
} as const;

/** scope.open / scope.close (src/scope/events.ts). */
export const scopeEventAttributes = z.object({
  'witness.scope.run_id': scopeId,
  'witness.scope.session_id': scopeId,
  'witness.scope.tool_call_id': scopeId,
  'witness.scope.tool_name': scopeId.optional(),
  'process.pid': u32.optional(),
  'witness.cgroup.path': z.string().optional(),
  'witness.scope.opened': z.string().regex(RFC3339_NS),
  'witness.scope.closed': z.string().regex(RFC3339_NS).optional(),
}).strict();

function findingVariant<N extends keyof typeof findingAttributeSchemas>(name: N) {
  return z.object({ time, event: z.literal(name), attributes: findingAttributeSchemas[name] }).strict();
}

export const findingEnvelopeSchema = z.discriminatedUnion('event', [
  findingVariant('finding.unattributed_process'), findingVariant('finding.undeclared_egress'), findingVariant('finding.sensitive_read'),
  findingVariant('finding.io_uring'), findingVariant('finding.sensitive_link'), findingVariant('finding.chmod'),
  findingVariant('finding.fileless_exec'), findingVariant('finding.kernel_module'), findingVariant('finding.bpf_program'),
  findingVariant('finding.mount'), findingVariant('finding.namespace'), findingVariant('finding.chroot_escape'),
]);

export const scopeEnvelopeSchema = z.object({
  time, event: z.enum(['scope.open', 'scope.close']), attributes: scopeEventAttributes,
}).strict();
