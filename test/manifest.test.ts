import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WitnessError } from '../src/errors.js';
import { EgressPolicy, hostnameAllowed } from '../src/manifest/egress.js';
import { loadManifest, parseManifest } from '../src/manifest/load.js';
import { AgentMatcher, cgroupUnder } from '../src/manifest/match.js';
import { manifestSensitivePaths, SensitiveReadPolicy } from '../src/manifest/sensitive.js';

const F = '/etc/agent-witness/agents.json';
const dir = mkdtempSync(join(tmpdir(), 'witness-manifest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHA = 'a'.repeat(64);
const good = {
  version: 1,
  agents: [
    {
      name: 'coder',
      match: [{ executable: '/usr/bin/node', uid: 1000 }, { sha256: SHA }, { unit: 'coder.service' }],
      egress: { cidrs: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'], hostnames: ['api.example.com', '*.cdn.example.net'] },
      sensitive_paths: ['/srv/coder/secrets'],
      allowed_sensitive_reads: ['~/.npmrc'],
    },
    { name: 'indexer', match: [{ cgroup: '/system.slice/indexer.service' }] },
  ],
  sensitive_paths: ['/etc/extra-secret'],
};

function errorOf(value: unknown): WitnessError {
  try {
    parseManifest(typeof value === 'string' ? value : JSON.stringify(value), F);
  } catch (e) {
    if (e instanceof WitnessError) return e;
    throw e;
  }
  throw new Error('expected the manifest to be rejected');
}

function withAgent(patch: Record<string, unknown>): unknown {
  return { version: 1, agents: [{ name: 'a', match: [{ uid: 1 }], ...patch }] };
}

describe('agents.json validation', () => {
  it('accepts a full manifest and fills defaults', () => {
    const m = parseManifest(JSON.stringify(good), F);
    expect(m.agents[1]!.egress).toEqual({ cidrs: [], hostnames: [], loopback: false });
    expect(m.resolve_interval_seconds).toBe(300);
  });

  it('wrong types name the JSON path and what was expected', () => {
    const e = errorOf(withAgent({ match: [{ uid: '1000' }] }));
    expect(e.code).toBe('E_CONFIG');
    expect(e.file).toBe(F);
    expect(e.field).toBe('$.agents[0].match[0].uid');
    expect(e.message).toMatch(/expected number, received string; write a number here/);
    expect(errorOf({ version: 1, agents: {} }).field).toBe('$.agents');
  });

  it('unknown keys are named, with where to look for the allowed ones', () => {
    const e = errorOf(withAgent({ egres: {} }));
    expect(e.field).toBe('$.agents[0]');
    expect(e.message).toMatch(/unknown key 'egres'; allowed here: name, description, match, egress, sensitive_paths, allowed_sensitive_reads/);
    expect(errorOf(withAgent({ match: [{ exe: '/bin/x' }] })).message).toMatch(/unknown key 'exe'; allowed here: executable, sha256, uid, cgroup, unit/);
    expect(errorOf(withAgent({ egress: { cidr: [] } })).message).toMatch(/allowed here: cidrs, hostnames, loopback/);
    expect(errorOf({ version: 1, agents: [], extra: 1 }).message).toMatch(/unknown key 'extra'; allowed here: version, agents, sensitive_paths, resolve_interval_seconds/);
  });

  it('duplicate agent names point at the second one', () => {
    const e = errorOf({ version: 1, agents: [{ name: 'x', match: [{ uid: 1 }] }, { name: 'x', match: [{ uid: 2 }] }] });
    expect(e.field).toBe('$.agents[1].name');
    expect(e.message).toMatch(/duplicate agent name 'x' \(also agents\[0\]\)/);
  });

  it('bad CIDRs say what is wrong and show the right form', () => {
    const e = errorOf(withAgent({ egress: { cidrs: ['10.0.0.0/33'] } }));
    expect(e.field).toBe('$.agents[0].egress.cidrs[0]');
    expect(e.message).toMatch(/bad CIDR '10\.0\.0\.0\/33'.*0 to 32.*"10\.0\.0\.0\/8"/);
    expect(errorOf(withAgent({ egress: { cidrs: ['300.1.1.1/8'] } })).message).toMatch(/not an IPv4 or IPv6 address/);
    expect(errorOf(withAgent({ egress: { cidrs: ['::1/129'] } })).message).toMatch(/0 to 128/);
  });

  it('rejects empty rules, reserved names, relative paths, bad hashes, bad version — all listed at once', () => {
    expect(errorOf(withAgent({ match: [{}] })).message).toMatch(/at least one of executable, sha256/);
    expect(errorOf(withAgent({ match: [] })).message).toMatch(/at least one match rule/);
    expect(errorOf({ version: 1, agents: [{ name: 'unattributed', match: [{ uid: 1 }] }] }).message).toMatch(/reserved/);
    expect(errorOf(withAgent({ match: [{ executable: 'node' }] })).message).toMatch(/absolute path/);
    expect(errorOf(withAgent({ match: [{ sha256: 'ABC' }] })).message).toMatch(/64 lower-case hex/);
    expect(errorOf({ version: 2, agents: [] }).message).toMatch(/version must be 1/);
    const many = errorOf({ version: 1, agents: [{ name: 'a', match: [{ uid: -1 }], egress: { hostnames: ['bad host'] } }] });
    expect(many.message).toMatch(/also \$\.agents\[0\]\.egress\.hostnames\[0\]: hostname must be a DNS name/);
  });

  it('invalid JSON and a missing file are E_CONFIG naming the file', () => {
    expect(errorOf('{"version": 1,').message).toMatch(/not valid JSON/);
    expect(() => loadManifest(join(dir, 'absent.json'))).toThrow(/absent\.json: cannot read the agent manifest \(ENOENT\)/);
    const f = join(dir, 'agents.json');
    writeFileSync(f, JSON.stringify(good));
    expect(loadManifest(f).agents.map((a) => a.name)).toEqual(['coder', 'indexer']);
  });
});

describe('matching', () => {
  const m = new AgentMatcher(parseManifest(JSON.stringify(good), F));
  const base = { exe: '/usr/bin/python3', sha256: null, uid: 0, cgroupPath: '/', unit: null };

  it('a rule needs all its conditions; any rule of an agent will do; first agent wins', () => {
    expect(m.match({ ...base, exe: '/usr/bin/node', uid: 1000 })).toBe('coder');
    expect(m.match({ ...base, exe: '/usr/bin/node', uid: 1001 })).toBeNull();
    expect(m.match({ ...base, sha256: SHA })).toBe('coder');
    expect(m.match({ ...base, unit: 'coder.service' })).toBe('coder');
    expect(m.match({ ...base, cgroupPath: '/system.slice/indexer.service/worker' })).toBe('indexer');
    expect(m.match({ ...base, cgroupPath: '/system.slice/indexer.service2' })).toBeNull();
    expect(m.usesHash).toBe(true);
  });

  it('cgroup prefixes match whole components', () => {
    expect(cgroupUnder('/a/b', '/a/b')).toBe(true);
    expect(cgroupUnder('/a/b/c', '/a/b/')).toBe(true);
    expect(cgroupUnder('/a/bc', '/a/b')).toBe(false);
    expect(cgroupUnder('/x', '/')).toBe(true);
  });
});

describe('egress and sensitive reads', () => {
  const manifest = parseManifest(JSON.stringify(good), F);

  it('allows declared CIDRs (IPv4-mapped too) and resolved hostnames; re-resolution keeps one round of old addresses', async () => {
    let answer = ['198.51.100.1'];
    const p = new EgressPolicy(manifest, async (h) => (h === 'api.example.com' ? answer : []), new Set(['127.0.0.53']));
    await p.refresh();
    expect(p.allows('coder', '10.9.8.7', 443)).toBe(true);
    expect(p.allows('coder', '::ffff:10.9.8.7', 443)).toBe(true);
    expect(p.allows('coder', '2001:db8::5', 443)).toBe(true);
    expect(p.allows('coder', '192.0.2.7', 443)).toBe(true);
    expect(p.allows('coder', '192.0.2.8', 443)).toBe(false);
    expect(p.allows('coder', '198.51.100.1', 443)).toBe(true);
    expect(p.allows('coder', '127.0.0.1', 8080)).toBe(false);
    expect(p.allows('coder', '127.0.0.53', 53)).toBe(true); // the system resolver is DNS, not egress
    expect(p.allows('indexer', '10.9.8.7', 443)).toBe(false);
    expect(p.allows('nobody', '10.9.8.7', 443)).toBe(false);
    answer = ['198.51.100.2'];
    await p.refresh();
    expect(p.allows('coder', '198.51.100.1', 443)).toBe(true);
    await p.refresh();
    expect(p.allows('coder', '198.51.100.1', 443)).toBe(false);
    expect(p.allows('coder', '198.51.100.2', 443)).toBe(true);
  });

  it('learns wildcard hostnames from the agent\'s own DNS queries', async () => {
    const p = new EgressPolicy(manifest, async (h) => (h === 'img.cdn.example.net' ? ['203.0.113.9'] : []), new Set());
    await p.refresh();
    expect(p.allows('coder', '203.0.113.9', 443)).toBe(false);
    expect(p.noteQuery('coder', 'evil.example.org')).toBeUndefined();
    await p.noteQuery('coder', 'img.cdn.example.net');
    expect(p.allows('coder', '203.0.113.9', 443)).toBe(true);
    expect(hostnameAllowed('API.example.com.', ['api.example.com'])).toBe(true);
    expect(hostnameAllowed('cdn.example.net', ['*.cdn.example.net'])).toBe(false);
  });

  it('loopback is egress unless declared', () => {
    const m = parseManifest(JSON.stringify(withAgent({ egress: { loopback: true } })), F);
    const p = new EgressPolicy(m, async () => [], new Set());
    expect(p.allows('a', '127.0.0.1', 8080)).toBe(true);
    expect(p.allows('a', '::1', 8080)).toBe(true);
    expect(p.allows('a', '10.0.0.1', 8080)).toBe(false);
  });

  it('sensitive paths add to the defaults; allowed reads expand ~ and cover children', () => {
    const paths = manifestSensitivePaths(manifest, ['/etc/shadow']);
    expect(paths).toEqual(['/etc/shadow', '/etc/extra-secret', '/srv/coder/secrets']);
    const s = new SensitiveReadPolicy(manifest, ['/home/u']);
    expect(s.allows('coder', '/home/u/.npmrc')).toBe(true);
    expect(s.allows('coder', '/home/u/.ssh/id_rsa')).toBe(false);
    expect(s.allows('indexer', '/home/u/.npmrc')).toBe(false);
  });
});
