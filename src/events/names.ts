/**
 * The NDJSON contract's event names. Later issues extend this list; they
 * never rename or remove an entry.
 */
export const SENSOR_EVENT_NAMES = [
  'process.exec',
  'process.exit',
  'network.connect',
  'dns.query',
  'file.write',
  'file.unlink',
  'file.rename',
  'file.read_sensitive',
  'security.setuid',
  'security.setgid',
  'security.ptrace',
  'security.bind',
  'sensor.heartbeat',
  // the boundary (docs/ndjson.md)
  'security.kill',
  'security.io_uring',
  'security.link',
  'security.symlink',
  'security.chmod',
  'security.memfd',
  'security.module',
  'security.bpf',
  'security.mount',
  'security.namespace',
  'sensor.scope_overflow',
  'sensor.suppressed',
  // network depth (docs/ndjson.md)
  'dns.answer',
  'network.close',
  'network.unix_connect',
  'network.listen',
  'network.accept',
] as const;

export type SensorEventName = (typeof SENSOR_EVENT_NAMES)[number];

/** Events the control plane itself emits (sensor lifecycle, findings, pulse). */
export const CONTROL_EVENT_NAMES = [
  'sensor.start',
  'sensor.stop',
  'sensor.restart',
  'ledger.gap',
  'sensor.drops',
  'process.outlived_root',
  'finding.unattributed_process',
  'finding.undeclared_egress',
  'finding.sensitive_read',
  // the boundary (docs/manifest.md)
  'finding.io_uring',
  'finding.sensitive_link',
  'finding.chmod',
  'finding.fileless_exec',
  'finding.kernel_module',
  'finding.bpf_program',
  'finding.mount',
  'finding.namespace',
  'finding.chroot_escape',
  'finding.runtime_socket',
  // built by NetDepth (src/sensor/netdepth.ts) from several kernel records
  'tls.client_hello',
  'llm.call',
  // built by TlsSessions (src/sensor/tls-sessions.ts) from --tls-metadata plaintext
  'tls.http_request',
  'tls.probe',
  'scope.open',
  'scope.close',
  'pulse.alert',
  'pulse.alert_cleared',
  'pulse.gap',
  'pulse.degraded',
  'pulse.drift',
  'pulse.beacon',
  'pulse.first_seen',
  'pulse.fault',
] as const;

export type ControlEventName = (typeof CONTROL_EVENT_NAMES)[number];
export type EventName = SensorEventName | ControlEventName;
