import { rfc3339Nanos, type Attributes, type Envelope } from '../events/envelope.js';
import { scopeAttributes, type Scope } from './registry.js';

/**
 * The `scope.open` / `scope.close` envelopes the daemon emits when the
 * registry changes (wire them via ScopeRegistry's `onChange`).
 */
export function scopeEnvelope(kind: 'open' | 'close', s: Scope): Envelope {
  const attributes: Attributes = { ...scopeAttributes(s) };
  if (s.pid !== null) attributes['process.pid'] = s.pid;
  if (s.cgroupPath !== null) attributes['witness.cgroup.path'] = s.cgroupPath;
  attributes['witness.scope.opened'] = rfc3339Nanos(s.openedNs);
  if (s.closedNs !== null) attributes['witness.scope.closed'] = rfc3339Nanos(s.closedNs);
  const at = kind === 'open' ? s.openedNs : s.closedNs ?? s.openedNs;
  return { time: rfc3339Nanos(at), event: kind === 'open' ? 'scope.open' : 'scope.close', attributes };
}
