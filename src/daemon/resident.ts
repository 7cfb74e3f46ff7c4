import { dirname, join, sep } from 'node:path';
import type { DaemonConfig } from '../config/schema.js';
import { log } from '../log.js';
import { loadNative } from '../sensor/native.js';
import { registerSensitive } from '../sensor/sensitive-set.js';
import type { WitnessSensor } from '../sensor/sensor.js';
import { DEFAULT_BUDGET_EVENTS, DEFAULT_BUDGET_WINDOW_MS } from '../sensor/sensor.js';
import { residentSocketPath } from './resident-protocol.js';
import { ResidentServer } from './resident-server.js';

/** Sensitive paths a client added, beyond the config's; bounded so clients cannot fill the kernel set. */
const EXTRA_SENSITIVE_MAX = 64;

/**
 * The sensitive paths resident clients bring (their state dir, session dir,
 * signing key: what a standalone `witness run` watches of its own). The
 * kernel matches a file or any of its ancestors, so a path under one already
 * registered adds nothing; the rest are registered once and kept (a reload
 * registers them again after refilling the config's set).
 */
export class ExtraSensitive {
  readonly paths: string[] = [];

  constructor(private readonly sensor: WitnessSensor, private readonly base: () => string[]) {}

  private static covered(p: string, watched: string[]): boolean {
    return watched.some((b) => p === b || p.startsWith(b.endsWith(sep) ? b : b + sep));
  }

  add(paths: string[]): void {
    // the config's set once per call (expanding ~ reads passwd's identity), not once per path
    const watched = [...this.base(), ...this.paths];
    const fresh = [...new Set(paths)].filter((p) => !ExtraSensitive.covered(p, watched));
    if (fresh.length === 0) return;
    const room = EXTRA_SENSITIVE_MAX - this.paths.length;
    if (fresh.length > room) log.warn({ refused: fresh.slice(room) }, 'resident: too many client sensitive paths; these are not watched');
    const take = fresh.slice(0, Math.max(0, room));
    if (take.length === 0) return;
    registerSensitive(this.sensor.native, take);
    this.paths.push(...take);
  }

  /** after the kernel set was cleared and refilled from the config */
  reregister(): void {
    if (this.paths.length > 0) registerSensitive(this.sensor.native, this.paths);
  }
}

/**
 * Starts the resident socket for a daemon's sensor, unless the config turns
 * it off or the addon predates SO_PEERCRED (then `witness run` keeps loading
 * its own sensor, and says why in its log).
 */
export async function startResident(config: DaemonConfig, sensor: WitnessSensor, extra: ExtraSensitive, env: NodeJS.ProcessEnv): Promise<ResidentServer | null> {
  if (config.residentSocket === false) return null;
  const peerCred = loadNative().peerCred;
  if (!peerCred) {
    log.warn('the native addon has no peerCred (built before native/peercred.cc): no resident socket; rebuild with npm run build:native');
    return null;
  }
  // beside a configured scope socket (a test's or a second daemon's own directory), else $WITNESS_RESIDENT_SOCKET or the default
  const path = config.residentSocket ?? (config.scopeSocket !== undefined ? join(dirname(config.scopeSocket), 'resident.sock') : residentSocketPath(env));
  let server: ResidentServer;
  try {
    server = await ResidentServer.listen({
      path,
      sensor,
      peerCred,
      traceAll: true,
      budgetEvents: config.sensor.budgetEvents ?? DEFAULT_BUDGET_EVENTS,
      budgetWindowMs: config.sensor.budgetWindowMs ?? DEFAULT_BUDGET_WINDOW_MS,
      addSensitive: (paths) => extra.add(paths),
    });
  } catch (err) {
    // not fatal: host-wide observation is the daemon's job; `witness run` then loads its own sensor
    log.warn({ path, err: (err as Error).message }, 'no resident socket');
    return null;
  }
  log.info({ path }, 'resident socket listening');
  return server;
}
