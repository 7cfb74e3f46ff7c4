import { BlockList, isIP } from 'node:net';

/**
 * CIDR parsing for the manifest's egress rules. A bare address is a host
 * (/32 or /128). Returns a reason instead of throwing so the manifest loader
 * can say exactly which entry is wrong and why.
 */
export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

export function parseCidr(text: string): Cidr | { error: string } {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return { error: `'${address}' is not an IPv4 or IPv6 address` };
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const max = version === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    return { error: `prefix '/${prefixText}' must be a whole number from 0 to ${max} for ${family}` };
  }
  return { address, prefix: Number(prefixText), family };
}

/** Dotted IPv4 → uint32, or -1. */
function ipv4ToInt(address: string): number {
  const parts = address.split('.');
  if (parts.length !== 4) return -1;
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (p === '' || !(v >= 0 && v <= 255) || !Number.isInteger(v)) return -1;
    n = n * 256 + v;
  }
  return n;
}

/**
 * An allow list of CIDRs; IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4
 * ranges. IPv4 is checked with integer masks (every connect of an agent
 * passes here; net.BlockList costs ~2 µs a call), IPv6 with BlockList.
 */
export class CidrSet {
  private readonly v4: [number, number][] = [];
  private readonly v6 = new BlockList();
  private v6count = 0;

  add(c: Cidr): void {
    if (c.family === 'ipv4') {
      const mask = c.prefix === 0 ? 0 : (0xffff_ffff << (32 - c.prefix)) >>> 0;
      this.v4.push([(ipv4ToInt(c.address) & mask) >>> 0, mask]);
    } else {
      this.v6.addSubnet(c.address, c.prefix, 'ipv6');
      this.v6count++;
    }
  }

  addAddress(address: string): void {
    const v = isIP(address);
    if (v === 4) this.add({ address, prefix: 32, family: 'ipv4' });
    else if (v === 6) this.add({ address, prefix: 128, family: 'ipv6' });
  }

  has(address: string): boolean {
    const plain = address.startsWith('::ffff:') && address.indexOf('.') > 0 ? address.slice(7) : address;
    const n = ipv4ToInt(plain);
    if (n >= 0) {
      for (const [net, mask] of this.v4) if (((n & mask) >>> 0) === net) return true;
      return false;
    }
    return this.v6count > 0 && isIP(address) === 6 && this.v6.check(address, 'ipv6');
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export function isLoopback(address: string): boolean {
  const v = isIP(address);
  return v !== 0 && LOOPBACK.check(address, v === 4 ? 'ipv4' : 'ipv6');
}
