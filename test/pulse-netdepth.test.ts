import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/events/envelope.js';
import { AgentWindow } from '../src/pulse/window.js';

const env = (event: Envelope['event'], attributes: Envelope['attributes']): Envelope => ({ time: '2026-01-01T00:00:00.000000000Z', event, attributes });

describe('pulse window fed by network depth', () => {
  it('takes SNI from tls.client_hello and sizes external flows from the kernel byte counts at close', () => {
    const w = new AgentWindow(new Set());
    w.add(env('network.connect', { 'network.peer.address': '203.0.113.9', 'network.peer.port': 443, 'witness.result': -115 }), 1000);
    w.add(env('tls.client_hello', { 'server.address': 'API.Anthropic.com' }), 1001);
    w.add(env('llm.call', { 'network.peer.address': '203.0.113.9', 'network.peer.port': 443, 'witness.conn.tx_bytes': 600, 'witness.conn.rx_bytes': 7000 }), 2000);
    expect([...w.sniNames]).toEqual(['api.anthropic.com']);
    expect(w.externalFlows).toEqual([{ destination: destinationOf(w), tsMs: 1000, bytes: 7600 }]);
  });

  it('counts bytes per window and model-provider traffic per provider, for the digest', () => {
    const w = new AgentWindow(new Set());
    const call = (provider: string, tx: number, rx: number) => env('llm.call', {
      'network.peer.address': '203.0.113.9', 'network.peer.port': 443, 'witness.conn.tx_bytes': tx, 'witness.conn.rx_bytes': rx,
      'gen_ai.provider.name': provider, 'witness.llm.request_bytes': tx, 'witness.llm.response_bytes': rx,
    });
    w.add(call('openai', 100, 1000), 1);
    w.add(call('anthropic', 200, 2000), 2);
    w.add(call('openai', 10, 20), 3);
    w.add(env('network.close', { 'network.peer.address': '127.0.0.1', 'network.peer.port': 80, 'witness.conn.tx_bytes': 5, 'witness.conn.rx_bytes': 6 }), 4);
    expect(w.bytes).toBe(100 + 1000 + 200 + 2000 + 10 + 20 + 11);
    expect(w.llmProviders()).toEqual([
      { provider: 'anthropic', calls: 1, requestBytes: 200, responseBytes: 2000 },
      { provider: 'openai', calls: 2, requestBytes: 110, responseBytes: 1020 },
    ]);
  });
});

function destinationOf(w: AgentWindow): string {
  return w.externalDestinations()[0]!;
}
