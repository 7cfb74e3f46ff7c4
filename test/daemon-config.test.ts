import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../src/config/load.js';
import { WitnessError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'witness-config-'));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function failure(fn: () => unknown): WitnessError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WitnessError);
    return err as WitnessError;
  }
  throw new Error('expected a WitnessError');
}

describe('daemon config', () => {
  it('accepts the shipped example and fills defaults', () => {
    const c = loadConfig(join(import.meta.dirname, '..', 'deploy', 'witness.json'));
    expect(c.heartbeat).toBe(10_000);
    expect(c.store).toMatchObject({ enabled: true, maxAge: 7 * 86_400_000, maxBytes: 1 << 30 });
    expect(c.export.file).toMatchObject({ dir: '/var/log/agent-witness', maxAge: 3_600_000, keep: 48 });
    expect(c.export.otlp?.enabled).toBe(false);
    expect(c.ledger).toMatchObject({ enabled: true, maxBytes: 4 * 1024 ** 3, maxAge: 90 * 86_400_000, failureTimeout: 60_000 });
  });

  it('sensor.tlsMetadata / tlsContent: booleans, content only with metadata', () => {
    expect(parseConfig({ sensor: { tlsMetadata: true, tlsContent: true } }, 'c.json').sensor).toMatchObject({ tlsMetadata: true, tlsContent: true });
    expect(failure(() => parseConfig({ sensor: { tlsContent: true } }, 'c.json')).message).toMatch(/tlsContent needs tlsMetadata/);
  });

  it('an empty object is a valid config (store + pulse, no exporters)', () => {
    const c = parseConfig({}, 'x.json');
    expect(c.export).toEqual({});
    expect(c.pulse.enabled).toBe(true);
  });

  it('a disabled exporter needs no destination; an enabled one without it is named', () => {
    const c = parseConfig({ export: { file: { enabled: false }, otlp: { enabled: false } } }, 'off.json');
    expect([c.export.file?.enabled, c.export.otlp?.enabled]).toEqual([false, false]);
    const e = failure(() => parseConfig({ export: { file: { prefix: 'w' } } }, 'on.json'));
    expect(e.message).toContain('on.json');
    expect(e.message).toContain('export.file.dir');
    expect(e.message).toContain('required when the file exporter is enabled');
  });

  it('a wrong type names the file and the dotted field', () => {
    const p = write('types.json', JSON.stringify({ export: { otlp: { endpoint: 'http://127.0.0.1:4318', batchSize: 'many' } } }));
    const e = failure(() => loadConfig(p));
    expect(e.code).toBe('E_CONFIG');
    expect(e.file).toBe(p);
    expect(e.field).toBe('export.otlp.batchSize');
    expect(e.message).toContain(p);
    expect(e.message).toContain('export.otlp.batchSize');
  });

  it('an unknown key (a typo) is an error naming it, at any depth', () => {
    const top = failure(() => loadConfig(write('unknown-top.json', '{"heartbeats": "5s"}')));
    expect(top.field).toBe('heartbeats');
    expect(top.message).toContain("unknown key 'heartbeats'");
    const nested = failure(() => loadConfig(write('unknown-nested.json', '{"export": {"file": {"dir": "/tmp/x", "max_bytes": 5}}}')));
    expect(nested.field).toBe('export.file.max_bytes');
  });

  it('lists every problem, not just the first', () => {
    const e = failure(() => parseConfig({ heartbeat: 5, store: { maxBytes: -1 } }, 'multi.json'));
    expect(e.field).toBe('heartbeat');
    expect(e.message).toContain('store.maxBytes');
  });

  it('rejects bad durations, relative paths and non-http endpoints', () => {
    expect(failure(() => parseConfig({ heartbeat: 'soon' }, 'c.json')).field).toBe('heartbeat');
    expect(failure(() => parseConfig({ export: { file: { dir: 'relative/dir' } } }, 'c.json')).field).toBe('export.file.dir');
    expect(failure(() => parseConfig({ export: { otlp: { endpoint: 'ftp://x' } } }, 'c.json')).field).toBe('export.otlp.endpoint');
    expect(failure(() => parseConfig({ sensor: { ringBytes: 5000 } }, 'c.json')).field).toBe('sensor.ringBytes');
  });

  it('validates pulse options with the engine schema, naming the nested field', () => {
    const e = failure(() => parseConfig({ pulse: { options: { windowMs: 'hourly' } } }, 'p.json'));
    expect(e.file).toBe('p.json');
    expect(e.field).toBe('pulse.options.windowMs');
  });

  it('malformed JSON names the file and the line', () => {
    const p = write('syntax.json', '{\n  "heartbeat": "5s",\n  oops\n}\n');
    const e = failure(() => loadConfig(p));
    expect(e.file).toBe(p);
    expect(e.message).toMatch(/line 3/);
  });

  it('a missing file is an E_CONFIG naming it', () => {
    const e = failure(() => loadConfig(join(dir, 'nope.json')));
    expect(e.code).toBe('E_CONFIG');
    expect(e.message).toContain('nope.json');
  });
});
