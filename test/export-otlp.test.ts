import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../src/events/envelope.js';
import { OtlpSink } from '../src/export/otlp-sink.js';
import { SCHEMA_VERSION } from '../src/export/schema.js';
import { OtlpReceiver } from './helpers/otlp-receiver.js';

const receivers: OtlpReceiver[] = [];
afterEach(async () => { for (const r of receivers.splice(0)) await r.stop(); });

async function receiver(port = 0): Promise<OtlpReceiver> {
  const r = await new OtlpReceiver().start(port);
  receivers.push(r);
  return r;
}

function numbered(i: number): Envelope {
  return { time: '2026-11-22T03:00:00.000000001Z', event: 'network.connect', attributes: { 'witness.seq': i } };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function seqs(r: OtlpReceiver): number[] {
  return r.records().map((rec) => Number(OtlpReceiver.attr(rec, 'witness.seq').intValue));
}

describe('OTLP/HTTP JSON logs sink', () => {
  it('posts /v1/logs with resource attributes and 64-bit integers as strings', async () => {
    const r = await receiver();
    const sink = new OtlpSink({ endpoint: r.endpoint, resource: { 'deployment.environment': 'test' } });
    const exec: Envelope = {
      time: '2026-11-22T03:28:57.123456789Z',
      event: 'process.exec',
      attributes: {
        'process.pid': 4242, 'process.linux.cgroup': '18446744073709551615', 'process.command_args': ['/bin/echo', 'hi'],
        'witness.dns.type': null, 'witness.exit.core_dumped': false, 'witness.score': 0.25,
      },
    };
    sink.write(exec, JSON.stringify(exec));
    sink.write({ time: exec.time, event: 'finding.sensitive_read', attributes: {} }, '');
    await sink.close();
    expect(r.requests.length).toBe(1);
    const req = r.requests[0]!;
    expect(req.path).toBe('/v1/logs');
    expect(req.contentType).toBe('application/json');
    const resource = Object.fromEntries(req.body.resourceLogs[0].resource.attributes.map((kv: any) => [kv.key, kv.value.stringValue]));
    expect(resource).toMatchObject({ 'service.name': 'agent-witness', 'witness.schema_version': SCHEMA_VERSION, 'os.type': 'linux', 'deployment.environment': 'test' });
    expect(typeof resource['host.name']).toBe('string');
    const [rec, finding] = r.records();
    expect(rec.timeUnixNano).toBe('1795318137123456789'); // 2026-11-22T03:28:57.123456789Z, exact to the ns
    expect(typeof rec.observedTimeUnixNano).toBe('string');
    expect(rec.eventName).toBe('process.exec');
    expect(rec.severityText).toBe('INFO');
    expect(finding.severityText).toBe('WARN');
    expect(OtlpReceiver.attr(rec, 'event.name')).toEqual({ stringValue: 'process.exec' });
    expect(OtlpReceiver.attr(rec, 'process.pid')).toEqual({ intValue: '4242' });
    expect(OtlpReceiver.attr(rec, 'process.linux.cgroup')).toEqual({ stringValue: '18446744073709551615' });
    expect(OtlpReceiver.attr(rec, 'process.command_args')).toEqual({ arrayValue: { values: [{ stringValue: '/bin/echo' }, { stringValue: 'hi' }] } });
    expect(OtlpReceiver.attr(rec, 'witness.exit.core_dumped')).toEqual({ boolValue: false });
    expect(OtlpReceiver.attr(rec, 'witness.score')).toEqual({ doubleValue: 0.25 });
    expect(OtlpReceiver.attr(rec, 'witness.dns.type')).toBeUndefined();
    expect(sink.stats()).toMatchObject({ written: 2, dropped: 0, queued: 0 });
  });

  it('a collector that goes away and comes back loses nothing: retried with backoff', async () => {
    const r = await receiver();
    const port = r.port;
    const sink = new OtlpSink({ endpoint: r.endpoint, batchSize: 50, initialBackoffMs: 20, maxBackoffMs: 200 });
    for (let i = 0; i < 100; i++) sink.write(numbered(i), '');
    await until(() => r.records().length === 100, 'first 100');
    await r.stop();
    for (let i = 100; i < 300; i++) {
      sink.write(numbered(i), '');
      if (i % 40 === 0) await new Promise((res) => setTimeout(res, 5));
    }
    await until(() => sink.stats().failures >= 2, 'failed attempts while the collector is down');
    expect(sink.stats().queued).toBeGreaterThan(0);
    const back = await receiver(port);
    await until(() => sink.stats().queued === 0, 'queue to drain after the collector returns');
    const got = [...seqs(r), ...seqs(back)];
    expect(new Set(got).size).toBe(300);
    expect(sink.stats()).toMatchObject({ written: 300, dropped: 0 });
    await sink.close();
  });

  it('while the collector is down, overflow past the bound is dropped and counted, the rest delivered', async () => {
    const r = await receiver();
    const port = r.port;
    await r.stop();
    const sink = new OtlpSink({ endpoint: `http://127.0.0.1:${port}`, maxQueued: 50, batchSize: 10, initialBackoffMs: 20, maxBackoffMs: 100 });
    for (let i = 0; i < 200; i++) sink.write(numbered(i), '');
    await until(() => sink.stats().failures >= 1, 'a failed attempt');
    const back = await receiver(port);
    await until(() => sink.stats().queued === 0, 'drain');
    const s = sink.stats();
    expect(s.dropped).toBe(150);
    expect(s.written).toBe(50);
    expect(seqs(back).length).toBe(50);
    expect(s.written + s.dropped).toBe(200);
    await sink.close();
  });

  it('retries 503 (honouring Retry-After), drops a 400 batch, counts partial rejections', async () => {
    const r = await receiver();
    let calls = 0;
    r.respond = () => {
      calls++;
      if (calls === 1) return { status: 503, headers: { 'retry-after': '0' } };
      if (calls === 2) return { status: 400, body: '{"message":"bad"}' };
      if (calls === 3) return { status: 200, body: '{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"x"}}' };
      return { status: 200 };
    };
    const sink = new OtlpSink({ endpoint: `${r.endpoint}/v1/logs`, batchSize: 5, initialBackoffMs: 10 });
    for (let i = 0; i < 5; i++) sink.write(numbered(i), '');
    await until(() => calls >= 2, '503 then retry');
    // the retried batch got a 400: dropped, not retried
    await until(() => sink.stats().dropped === 5, 'rejected batch counted');
    for (let i = 5; i < 10; i++) sink.write(numbered(i), '');
    await until(() => calls >= 3 && sink.stats().queued === 0, 'partial success');
    expect(sink.stats()).toMatchObject({ written: 3, dropped: 7 });
    await sink.close();
  });

  it('close gives up on an unreachable collector within its deadline and counts the loss', async () => {
    const r = await receiver();
    const port = r.port;
    await r.stop();
    const sink = new OtlpSink({ endpoint: `http://127.0.0.1:${port}`, initialBackoffMs: 10_000 });
    for (let i = 0; i < 20; i++) sink.write(numbered(i), '');
    await until(() => sink.stats().failures >= 1, 'first failure');
    await sink.close(300);
    expect(sink.stats()).toMatchObject({ written: 0, dropped: 20, queued: 0 });
  });
});
