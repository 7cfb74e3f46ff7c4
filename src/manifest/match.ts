import type { AgentDeclaration, Manifest, MatchRule } from './schema.js';

/** What a rule can be matched against. */
export interface MatchSubject {
  exe: string;
  sha256: string | null;
  uid: number;
  cgroupPath: string | null;
  unit: string | null;
}

/** cgroup prefix on whole path components: /a/b matches /a/b and /a/b/c, not /a/bc. */
export function cgroupUnder(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path === p || path.startsWith(`${p}/`);
}

/** Every condition a rule lists must hold; a condition whose fact is unknown does not hold. */
export function ruleMatches(rule: MatchRule, s: MatchSubject): boolean {
  if (rule.executable !== undefined && rule.executable !== s.exe) return false;
  if (rule.sha256 !== undefined && rule.sha256 !== s.sha256) return false;
  if (rule.uid !== undefined && rule.uid !== s.uid) return false;
  if (rule.cgroup !== undefined && (s.cgroupPath === null || !cgroupUnder(s.cgroupPath, rule.cgroup))) return false;
  if (rule.unit !== undefined && rule.unit !== s.unit) return false;
  return true;
}

/**
 * Declared agents in manifest order; the first agent with a rule that
 * matches wins, so a specific agent listed before a broad one takes its
 * processes.
 */
export class AgentMatcher {
  readonly agents: readonly AgentDeclaration[];
  /** some rule needs the executable's hash: attribution waits for a pending one */
  readonly usesHash: boolean;

  constructor(manifest: Manifest) {
    this.agents = manifest.agents;
    this.usesHash = manifest.agents.some((a) => a.match.some((r) => r.sha256 !== undefined));
  }

  match(s: MatchSubject): string | null {
    for (const agent of this.agents) {
      for (const rule of agent.match) if (ruleMatches(rule, s)) return agent.name;
    }
    return null;
  }

  /** whether `s` could still match a sha256 rule once its hash is known */
  couldMatchWithHash(s: MatchSubject): boolean {
    if (!this.usesHash) return false;
    return this.agents.some((a) => a.match.some((r) => r.sha256 !== undefined && ruleMatches({ ...r, sha256: undefined }, s)));
  }
}
