import { DEFAULT_SENSITIVE, expandHome } from '../sensor/sensitive.js';
import type { Manifest } from './schema.js';

/** Paths the sensor should watch: its defaults plus every path the manifest adds (pass to WitnessSensor.open). */
export function manifestSensitivePaths(manifest: Manifest | null, defaults: readonly string[] = DEFAULT_SENSITIVE): string[] {
  const all = new Set<string>(defaults);
  if (manifest) {
    for (const p of manifest.sensitive_paths) all.add(p);
    for (const a of manifest.agents) for (const p of a.sensitive_paths) all.add(p);
  }
  return [...all];
}

function under(path: string, prefix: string): boolean {
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path === p || path.startsWith(`${p}/`);
}

/** Sensitive reads each agent is declared to make; any other sensitive read is a finding. */
export class SensitiveReadPolicy {
  private readonly allowed = new Map<string, string[]>();

  constructor(manifest: Manifest, homes?: string[]) {
    for (const a of manifest.agents) this.allowed.set(a.name, expandHome(a.allowed_sensitive_reads, homes));
  }

  allows(agent: string, path: string): boolean {
    const list = this.allowed.get(agent);
    return list !== undefined && list.some((p) => under(path, p));
  }
}
