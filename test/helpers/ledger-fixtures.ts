import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SessionWriter, type SessionWriterOptions } from '../../src/ledger/index.js';
import { rfc3339Nanos } from '../../src/events/envelope.js';

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `witness-${tag}-`));
}

/** A synthetic exported event line, shaped like the sensor's NDJSON. */
export function eventLine(i: number): string {
  return JSON.stringify({
    time: rfc3339Nanos(1_795_000_000_000_000_000n + BigInt(i) * 1_000_123n),
    event: i % 3 === 0 ? 'process.exec' : i % 3 === 1 ? 'file.write' : 'network.connect',
    attributes: { 'process.pid': 1000 + (i % 97), 'file.path': `/home/agent/project/src/file-${i}.ts`, 'witness.note': `é ${i} "quoted"` },
  });
}

export function newKey(): KeyObject {
  return crypto.generateKeyPairSync('ed25519').privateKey;
}

export async function writeSession(opts: Partial<SessionWriterOptions> & { stateDir: string; signKey: KeyObject }, events: number): Promise<string> {
  const w = await SessionWriter.create({ command: ['/bin/true', '--flag'], checkpointEveryEvents: 25, checkpointEverySeconds: 0, ...opts });
  for (let i = 0; i < events; i++) w.append(eventLine(i));
  await w.close({ exitCode: 0, counters: { 'sensor.events': events }, drops: { 'ring.lost': 0 } });
  return w.dir;
}

/** Lines of a file without the trailing newline's empty element. */
export function readLines(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
}

export function writeLines(file: string, lines: string[]): void {
  fs.writeFileSync(file, lines.length ? `${lines.join('\n')}\n` : '');
}
