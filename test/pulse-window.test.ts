import { describe, expect, it } from 'vitest';
import { destinationKey, isExternalAddress } from '../src/pulse/addresses.js';
import { parseDuration } from '../src/pulse/duration.js';
import { closeWindowsFor } from '../src/pulse/index.js';
import { scoreBeacon } from '../src/pulse/beacon.js';
import { HOUR, MINUTE, Sim, T0 } from './fixtures/pulse/sim.js';

describe('what counts as external', () => {
  const own = new Set(['192.0.2.99', '2001:db8::99']);
  it.each([
    ['127.0.0.1', false], ['127.8.9.10', false], ['::1', false], ['10.1.2.3', false], ['172.16.0.1', false],
    ['172.31.255.255', false], ['172.32.0.1', true], ['192.168.1.1', false], ['169.254.169.254', false],
    ['fe80::1%eth0', false], ['fd12:3456::1', false], ['fc00::1', false], ['::ffff:10.0.0.1', false],
    ['::ffff:8.8.8.8', true], ['[2001:db8::99]', false], ['192.0.2.99', false], ['0.0.0.0', false], ['::', false],
    ['8.8.8.8', true], ['2606:4700::1111', true], ['not-an-ip', true],
  ])('%s → external %s', (address, external) => {
    expect(isExternalAddress(address, own)).toBe(external);
  });

  it('destination keys are unambiguous for IPv6', () => {
    expect(destinationKey('2606:4700::1111', 443)).toBe('[2606:4700::1111]:443');
    expect(destinationKey('::ffff:8.8.8.8', 53)).toBe('8.8.8.8:53');
  });
});

describe('window counting (the API an end-to-end test uses)', () => {
  it('counts loopback connections as flows but not external ones, and failed connects apart', () => {
    const sim = new Sim();
    for (let i = 0; i < 5; i++) sim.connect(T0 + 10 * MINUTE + i * 1000, 'e2e', '127.0.0.1', 40_000 + (i % 2));
    sim.connect(T0 + 11 * MINUTE, 'e2e', '127.0.0.1', 40_002, { 'witness.result': -111 }); // ECONNREFUSED
    sim.connect(T0 + 12 * MINUTE, 'e2e', '8.8.8.8', 53, { 'witness.result': -115, 'network.transport': 'udp' }); // EINPROGRESS
    sim.push(T0 + 13 * MINUTE, 'process.exec', { 'witness.agent': 'e2e', 'process.pid': 7 });
    sim.push(T0 + 13 * MINUTE, 'file.write', { 'witness.agent': 'e2e', 'process.pid': 7 });
    sim.push(T0 + 13 * MINUTE, 'file.read_sensitive', { 'witness.agent': 'e2e', 'process.pid': 7 });
    sim.push(T0 + 14 * MINUTE, 'finding.sensitive_read', { 'witness.agent': 'e2e' });
    sim.push(T0 + 15 * MINUTE, 'network.connect', { 'network.peer.address': '1.1.1.1', 'network.peer.port': 443 });
    const records = closeWindowsFor(sim.sorted(), { hostAddresses: [] });
    const e2e = records.find((r) => r.agent === 'e2e')!;
    expect(e2e).toMatchObject({
      windowStart: T0, windowEnd: T0 + HOUR, status: 'gap', reasons: ['no_heartbeat'],
      flows: 6, failedFlows: 1, externalFlows: 1, uniqueDestinations: 3, uniqueExternalDestinations: 1,
      firstSeen: ['8.8.8.8:53'], execs: 1, fileWrites: 1, sensitiveReads: 1, findings: 1,
    });
    expect(records.find((r) => r.agent === 'unattributed')).toMatchObject({ flows: 1, externalFlows: 1 });
  });

  it('closes every window the events touch, including empty ones between', () => {
    const sim = new Sim().connect(T0 + 5 * MINUTE, 'a', '127.0.0.1').connect(T0 + 2 * HOUR + 5 * MINUTE, 'a', '127.0.0.1');
    expect(closeWindowsFor(sim.sorted(), { hostAddresses: [] }).map((r) => [(r.windowStart - T0) / HOUR, r.flows])).toEqual([[0, 1], [1, 0], [2, 1]]);
    expect(closeWindowsFor([])).toEqual([]);
  });

  it('windows can be seconds long for tests', () => {
    const sim = new Sim().heartbeats(T0, T0 + 30_000, 1000).connect(T0 + 12_500, 'a', '8.8.8.8');
    const records = closeWindowsFor(sim.sorted(), { windowMs: 10_000, maxSilenceMs: 2000, hostAddresses: [] });
    // The agent is tracked from the window it first appears in.
    expect(records.map((r) => [(r.windowStart - T0) / 1000, r.status, r.externalFlows])).toEqual([[10, 'ok', 1], [20, 'ok', 0]]);
  });
});

describe('beacon youth', () => {
  it('a perfect 20-minute timer is not a beacon after 4 h, but is after 12 h', () => {
    const timer = (hours: number) => Array.from({ length: hours * 3 }, (_, i) => T0 + i * 20 * MINUTE);
    const score = (hours: number) => scoreBeacon(timer(hours), timer(hours).map(() => null), T0 + hours * HOUR, 24 * HOUR)!.score;
    expect(score(4)).toBeLessThan(0.8);
    expect(score(12)).toBeGreaterThan(0.8);
  });
});

describe('durations', () => {
  it('parses units and bare seconds; rejects junk', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('3600')).toBe(3_600_000);
    expect(() => parseDuration('1x')).toThrow(/not a duration/);
    expect(() => parseDuration('0s')).toThrow(/not a duration/);
  });
});
