import { closeSync, openSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { WitnessError } from '../errors.js';
import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import { heartbeat } from '../sensor/heartbeat.js';
import { toEnvelope } from '../sensor/ndjson.js';
import { WitnessSensor, type SensorStats } from '../sensor/sensor.js';
import type { SensorEvent } from '../sensor/types.js';
import { parseArgs, str } from './args.js';
import { humanLine } from './format.js';

const USAGE = 'usage: witness run [--json] [--out FILE] [--heartbeat SECONDS] -- CMD [ARGS...]';

/** Lines collected while a batch decodes and written once after it: one write per batch, not per event. */
class LineSink {
  private lines: string[] = [];
  private scheduled = false;
  constructor(private readonly fd: number) {}
  push(line: string): void {
    this.lines.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }
  flush(): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const text = `${this.lines.join('\n')}\n`;
    this.lines = [];
    writeAll(this.fd, text);
  }
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (err) {
      // a non-blocking stdout (e.g. a pipe Node set O_NONBLOCK on) may say EAGAIN: wait it out
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const num = signal ? constants.signals[signal] : undefined;
  return 128 + (num ?? 0);
}

export function summaryText(counts: Map<string, number>, stats: SensorStats, seconds: number): string {
  const parts = [...counts.entries()].sort().map(([k, v]) => `${k}=${v}`);
  return `witness: ${parts.join(' ') || 'no events'}; drops=${stats.droppedTotal} ` +
    `(kernel ${stats.droppedTotal - stats.userDropped}, user ${stats.userDropped}) decode_errors=${stats.decodeErrors} ` +
    `in ${seconds.toFixed(2)}s\n`;
}

export async function run(argv: string[]): Promise<number> {
  const { flags, rest } = parseArgs(argv, { booleans: ['json'], strings: ['out', 'heartbeat'] }, 'run');
  if (rest.length === 0) throw new WitnessError('E_CONFIG', `no command given\n${USAGE}`, { file: 'witness run', field: 'CMD' });
  const out = str(flags, 'out');
  const heartbeatSeconds = Number(str(flags, 'heartbeat') ?? 10);
  if (!(heartbeatSeconds > 0)) throw new WitnessError('E_CONFIG', 'must be a positive number of seconds', { file: 'witness run', field: '--heartbeat' });

  const toStdout = out === undefined;
  const json = flags.json === true || out !== undefined || !process.stdout.isTTY;
  const fd = out !== undefined ? openSync(out, 'a', 0o600) : 1;
  const sink = new LineSink(fd);
  const counts = new Map<string, number>();
  const started = process.hrtime.bigint();
  let rootPid = -1;
  let rootExited: () => void = () => {};
  const rootExitSeen = new Promise<void>((resolve) => { rootExited = resolve; });

  const emit = (env: Envelope): void => {
    counts.set(env.event, (counts.get(env.event) ?? 0) + 1);
    sink.push(json ? JSON.stringify(env) : humanLine(env, true));
  };

  const sensor = WitnessSensor.open({
    onEvent: (ev: SensorEvent) => {
      const env = toEnvelope(ev, sensor.clock);
      if (env) emit(env);
      if (ev.kind === 'exit' && ev.pid === rootPid) rootExited();
    },
    onDecodeError: (err) => log.warn({ err: err.message }, 'malformed wire record'),
  });
  if (sensor.sensitiveSkipped.length > 0) log.debug({ skipped: sensor.sensitiveSkipped }, 'sensitive paths absent at start');

  // The child's stdout must not mix into an NDJSON stdout: send it to stderr then.
  const child = sensor.spawnTraced(rest[0]!, rest.slice(1), {
    stdio: ['inherit', toStdout && json ? 2 : 'inherit', 'inherit'],
  });
  rootPid = child.pid ?? -1;
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
  const beat = setInterval(() => emit(heartbeat(sensor, new Date())), heartbeatSeconds * 1000);

  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: 127, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // the root's exit record may still be in flight; give it a moment, not forever
  await Promise.race([rootExitSeen, new Promise((r) => setTimeout(r, 500))]);
  clearInterval(beat);
  const stats = await sensor.close();
  emit(heartbeat(sensor, new Date(), stats));
  sink.flush();
  if (fd !== 1) closeSync(fd);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, forward);

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(summaryText(counts, stats, seconds));
  if (result.error) {
    process.stderr.write(`witness run: cannot start ${rest[0]}: ${result.error.message}\n`);
    return 127;
  }
  return exitCodeOf(result.code, result.signal);
}
