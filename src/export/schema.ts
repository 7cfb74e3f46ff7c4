import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Version of the exported schema (docs/schema.md): the NDJSON envelope, its
 * attribute names and the OTLP mapping. Additive changes (new events, new
 * attributes) bump the minor number; renaming, removing or retyping anything
 * bumps the major. Carried as `witness.schema_version` on `sensor.start`,
 * every `sensor.heartbeat` and the OTLP resource.
 */
export const SCHEMA_VERSION = '1.0';

export const SERVICE_NAME = 'agent-witness';
export const SERVICE_VERSION = '0.1.0';

/** Host identity for resource attributes; machine-id is optional (containers may lack it). */
export function hostIdentity(): { 'host.name': string; 'host.id'?: string } {
  const id: { 'host.name': string; 'host.id'?: string } = { 'host.name': hostname() };
  try {
    const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    if (/^[0-9a-f]{32}$/.test(machineId)) id['host.id'] = machineId;
  } catch {
    // no machine-id: host.name alone identifies the host
  }
  return id;
}
