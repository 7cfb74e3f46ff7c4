import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { log } from '../log.js';
import { CidrSet, isLoopback, parseCidr } from './cidr.js';
import type { AgentDeclaration, Manifest } from './schema.js';

/**
 * Declared egress per agent: CIDRs, plus hostnames resolved at start, again
 * every `resolve_interval_seconds`, and whenever the agent itself asks DNS
 * for a declared name (which also covers "*.example.com" patterns and CDNs
 * that rotate addresses). Addresses from the previous resolution stay allowed
 * for one more round so a rotation does not flap.
 */

export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Nameservers from resolv.conf: a port-53 connect to one is a DNS lookup, not egress. */
export function nameservers(path = '/etc/resolv.conf'): Set<string> {
  const out = new Set<string>();
  try {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const m = /^\s*nameserver\s+(\S+)/.exec(line);
      if (m) out.add(m[1]!.replace(/%.*$/, ''));
    }
  } catch {
    // no resolv.conf: nothing is exempt
  }
  return out;
}

export function hostnameAllowed(name: string, patterns: readonly string[]): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  for (const raw of patterns) {
    const p = raw.toLowerCase().replace(/\.$/, '');
    if (p.startsWith('*.') ? n.endsWith(p.slice(1)) : n === p) return true;
  }
  return false;
}

class AgentEgress {
  readonly cidrs = new CidrSet();
  current = new Set<string>();
  previous = new Set<string>();
  constructor(readonly decl: AgentDeclaration) {
    for (const c of decl.egress.cidrs) {
      const parsed = parseCidr(c);
      if (!('error' in parsed)) this.cidrs.add(parsed);
    }
  }
  allows(address: string): boolean {
    if (this.decl.egress.loopback && isLoopback(address)) return true;
    const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
    return this.cidrs.has(address) || this.current.has(plain) || this.previous.has(plain);
  }
}

export class EgressPolicy {
  private readonly agents = new Map<string, AgentEgress>();
  private readonly dns: Set<string>;
  private timer: NodeJS.Timeout | undefined;
  private readonly lastAsked = new Map<string, number>();

  constructor(manifest: Manifest, private readonly resolve: Resolver = systemResolver, dnsServers = nameservers(), private readonly intervalMs = manifest.resolve_interval_seconds * 1000) {
    for (const a of manifest.agents) this.agents.set(a.name, new AgentEgress(a));
    this.dns = dnsServers;
  }

  /** Resolves every declared hostname; call once before trusting `allows`, then `start()`. */
  async refresh(): Promise<void> {
    await Promise.all([...this.agents.values()].map(async (a) => {
      const next = new Set<string>();
      for (const host of a.decl.egress.hostnames) {
        if (host.startsWith('*.')) continue; // patterns are learnt from the agent's own queries
        for (const addr of await this.safeResolve(host)) next.add(addr);
      }
      a.previous = a.current;
      a.current = next;
    }));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => { void this.refresh(); }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The agent asked DNS for `name`: if it is declared, learn its addresses (at most every 30 s per name). */
  noteQuery(agent: string, name: string, now = Date.now()): Promise<void> | undefined {
    const a = this.agents.get(agent);
    if (!a || !hostnameAllowed(name, a.decl.egress.hostnames)) return undefined;
    const key = `${agent}\0${name}`;
    if (now - (this.lastAsked.get(key) ?? -Infinity) < 30_000) return undefined;
    this.lastAsked.set(key, now);
    return this.safeResolve(name).then((addrs) => { for (const x of addrs) a.current.add(x); });
  }

  /** Whether a connect by `agent` to address:port is declared (unknown agents declare nothing). */
  allows(agent: string, address: string, port: number): boolean {
    if (port === 53 && this.dns.has(address)) return true;
    return this.agents.get(agent)?.allows(address) ?? false;
  }

  private async safeResolve(host: string): Promise<string[]> {
    try {
      return await this.resolve(host);
    } catch (err) {
      log.debug({ host, err: (err as Error).message }, 'declared hostname did not resolve');
      return [];
    }
  }
}
