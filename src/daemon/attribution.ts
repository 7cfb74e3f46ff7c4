import { AttributionEnricher } from '../identity/enricher.js';
import { AttributionStore } from '../identity/store.js';
import { scopeEnvelope } from '../scope/events.js';
import { scopeSocketPath } from '../scope/protocol.js';
import { ScopeSocketServer } from '../scope/socket.js';
import type { AttributionHooks } from './hooks.js';

/**
 * The daemon's attribution: the AttributionEnricher (manifest, identity,
 * findings; `reload()` on SIGHUP) and the ScopeSocketServer on its scope
 * registry, whose opens and closes are exported as scope.open / scope.close.
 */
export const attributionHooks: AttributionHooks = {
  async createEnricher(config, ctx) {
    return AttributionEnricher.fromManifest(config.manifest, {
      clock: ctx.clock,
      store: ctx.store ? new AttributionStore(ctx.store.db) : null,
      // a finding decided after its event (it waited for the executable's hash)
      onLateFinding: (env) => ctx.emit(env),
    });
  },
  async startScopeServer(config, enricher, ctx) {
    if (!(enricher instanceof AttributionEnricher)) return null;
    enricher.registry.addListener((kind, scope) => ctx.emit(scopeEnvelope(kind, scope)));
    return ScopeSocketServer.listen(enricher.registry, config.scopeSocket ?? scopeSocketPath(ctx.env));
  },
};
