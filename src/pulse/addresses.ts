import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/**
 * "External" means leaving the host and its private networks: loopback,
 * RFC 1918, link-local, ULA (fc00::/7), unspecified and the host's own
 * addresses are internal. Unparseable addresses count as external — an
 * address we cannot classify must not hide traffic.
 */
export function hostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(normalizeAddress(a.address));
  }
  return out;
}

export function normalizeAddress(address: string): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  // IPv4-mapped IPv6 (::ffff:10.0.0.1) is the IPv4 address for our purposes.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped ? mapped[1]! : a;
}

export function isExternalAddress(address: string, own: ReadonlySet<string>): boolean {
  const a = normalizeAddress(address);
  if (own.has(a)) return false;
  const family = isIP(a);
  if (family === 4) return !isInternalV4(a);
  if (family === 6) return !isInternalV6(a);
  return true;
}

function isInternalV4(a: string): boolean {
  const [o1, o2] = a.split('.').map(Number) as [number, number];
  return o1 === 127            // loopback
    || o1 === 10               // RFC 1918
    || (o1 === 172 && o2 >= 16 && o2 <= 31)
    || (o1 === 192 && o2 === 168)
    || (o1 === 169 && o2 === 254) // link-local
    || o1 === 0;               // "this network" / unspecified
}

function isInternalV6(a: string): boolean {
  if (a === '::1' || a === '::') return true;
  const first = a.startsWith('::') ? 0 : parseInt(a.split(':')[0]!, 16);
  return (first & 0xfe00) === 0xfc00   // ULA fc00::/7
    || (first & 0xffc0) === 0xfe80;    // link-local fe80::/10
}

/** `addr:port`, with brackets around IPv6 so the key is unambiguous. */
export function destinationKey(address: string, port: number | undefined): string {
  const a = normalizeAddress(address);
  const host = a.includes(':') ? `[${a}]` : a;
  return port === undefined ? host : `${host}:${port}`;
}
