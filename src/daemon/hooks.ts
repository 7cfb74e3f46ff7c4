import type { DaemonConfig } from '../config/schema.js';
import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import { passThrough, type Enricher } from '../pipeline/types.js';
import type { BootClock } from '../sensor/ndjson.js';
import type { Store } from '../store/db.js';

/**
 * ATTRIBUTION HOOK. The daemon mounts attribution through these two
 * factories (the real ones are in ./attribution.ts):
 *
 *   createEnricher    → the AttributionEnricher (manifest + identity); its
 *                       `reload()` runs on SIGHUP to re-read the manifest.
 *   startScopeServer  → the ScopeSocketServer on `config.scopeSocket`; the
 *                       envelopes it raises (scope.open/close) go out through
 *                       `emit` like any other event.
 *
 * `passThroughHooks` below export events unattributed and start no socket
 * (tests, and a fallback should attribution ever need to be switched off).
 * test/daemon-pipeline.test.ts drives a substitute enricher through the
 * hook (enrich, findings, reload, close).
 */
export interface ReloadableEnricher extends Enricher {
  /** Re-reads the manifest (SIGHUP). Throwing keeps the previous manifest. */
  reload?(): void | Promise<void>;
}

export interface ScopeServerHandle {
  close(): void | Promise<void>;
}

export interface HookContext {
  /** Sends an envelope down the pipeline (sinks + pulse). */
  emit(env: Envelope): void;
  /** The boot-time → epoch offset the sensor's events are stamped with. */
  clock: BootClock;
  /** The daemon's store (attribution tables live there too); null when store and pulse are off. */
  store: Store | null;
  env: NodeJS.ProcessEnv;
}

export interface AttributionHooks {
  createEnricher(config: DaemonConfig, ctx: HookContext): Promise<ReloadableEnricher>;
  startScopeServer(config: DaemonConfig, enricher: ReloadableEnricher, ctx: HookContext): Promise<ScopeServerHandle | null>;
}

export const passThroughHooks: AttributionHooks = {
  async createEnricher(config) {
    if (config.manifest !== undefined) log.warn({ manifest: config.manifest }, 'attribution is off; events are exported unattributed');
    return passThrough;
  },
  async startScopeServer() {
    return null;
  },
};
