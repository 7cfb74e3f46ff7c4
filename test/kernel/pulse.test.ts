import type { Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { closeWindowsFor } from '../../src/pulse/index.js';
import { heartbeat } from '../../src/sensor/heartbeat.js';
import { closeSensorWithListeners, kernelSuite, openSensorWithListeners, SensorHarness } from '../helpers/kernel.js';

const { skip } = kernelSuite();


describe.skipIf(skip)('pulse over real kernel events', () => {
  let h: SensorHarness;
  let v4: Server;
  let v6: Server;
  beforeAll(async () => { ({ h, v4, v6 } = await openSensorWithListeners()); });
  afterAll(async () => { await closeSensorWithListeners({ h, v4, v6 }); });

  it('a closed window counts a traced child\'s loopback connections as flows, none external', async () => {
    const p4 = (v4.address() as { port: number }).port;
    const p6 = (v6.address() as { port: number }).port;
    const script = `const net = require('net');
const go = (port, host) => new Promise((r) => net.connect(port, host).on('connect', function () { this.destroy(); r(); }));
(async () => { await go(${p4}, '127.0.0.1'); await go(${p4}, '127.0.0.1'); await go(${p4}, '127.0.0.1'); await go(${p6}, '::1'); })();`;
    const before = heartbeat(h.sensor, new Date());
    const r = await h.run(process.execPath, ['-e', script]);
    expect(r.code).toBe(0);
    const after = heartbeat(h.sensor, new Date());
    // attribution is not this test's subject: label the tree's events as one agent
    const events: Envelope[] = r.envelopes.map((e) => ({ ...e, attributes: { ...e.attributes, 'witness.agent': 'e2e' } }));
    const windows = closeWindowsFor([before, ...events, after], { hostAddresses: [] }).filter((w) => w.agent === 'e2e');
    const sum = (k: 'flows' | 'externalFlows' | 'execs') => windows.reduce((a, w) => a + w[k], 0);
    expect(sum('flows')).toBe(4);
    expect(sum('externalFlows')).toBe(0);
    expect(sum('execs')).toBe(1);
    expect(Math.max(...windows.map((w) => w.uniqueDestinations))).toBe(2);
  });
});
