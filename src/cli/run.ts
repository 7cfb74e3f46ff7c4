import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { WitnessError } from '../errors.js';
import { ContextCompactor } from '../events/compact.js';
import { StdoutSink } from '../export/stdout-sink.js';
import type { Envelope } from '../events/envelope.js';
import { AttributionEnricher } from '../identity/enricher.js';
import { SessionWriter } from '../ledger/index.js';
import { loadManifest } from '../manifest/load.js';
import { manifestSensitivePaths } from '../manifest/sensitive.js';
import { scopeEnvelope } from '../scope/events.js';
import { log } from '../log.js';
import { heartbeat } from '../sensor/heartbeat.js';
import { checkPrivileges } from '../sensor/host.js';
import { ProviderTable } from '../sensor/llm.js';
import { enrichThrough, NetDepth } from '../sensor/netdepth.js';
import { WitnessSensor, type SensorStats } from '../sensor/sensor.js';
import { takeWitnessFlags, WitnessPusher } from '../cosigner/push.js';
import type { SensorEvent } from '../sensor/types.js';
import { parseArgs, str } from './args.js';
import { humanLine } from './format.js';

const USAGE = 'usage: witness run [--json] [--out FILE] [--heartbeat SECONDS] [--sign-key FILE] [--session-dir DIR]\n' +
  '                   [--track PATH[,PATH...]] [--no-ledger] [--manifest agents.json] [--witness URL=VKEYFILE ...]\n' +
  '                   [--scope-run R --scope-session S [--scope-tool-call T] [--scope-tool-name N]] -- CMD [ARGS...]';

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const num = signal ? constants.signals[signal] : undefined;
  return 128 + (num ?? 0);
}

export function summaryText(counts: Map<string, number>, stats: SensorStats, outputDropped: number, seconds: number): string {
  const parts = [...counts.entries()].sort().map(([k, v]) => `${k}=${v}`);
  return `witness: ${parts.join(' ') || 'no events'}; drops=${stats.droppedTotal + outputDropped} ` +
    `(kernel ${stats.droppedTotal - stats.userDropped}, user ${stats.userDropped}, output ${outputDropped}) ` +
    `decode_errors=${stats.decodeErrors} in ${seconds.toFixed(2)}s\n`;
}

function withNet(hb: Envelope, net: NetDepth): Envelope {
  Object.assign(hb.attributes, net.heartbeatAttributes());
  return hb;
}

/** Executable identity for session.json: resolved path + SHA-256 of the file. */
function executableIdentity(path: string | undefined): { path?: string; sha256?: string } {
  if (!path) return {};
  try {
    return { path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
  } catch {
    return { path }; // gone or unreadable: the path alone is still evidence
  }
}

export async function run(rawArgv: string[]): Promise<number> {
  const { witnesses, argv } = takeWitnessFlags(rawArgv);
  const { flags, rest } = parseArgs(argv, {
    booleans: ['json', 'no-ledger'],
    strings: ['out', 'heartbeat', 'sign-key', 'session-dir', 'track', 'manifest', 'scope-run', 'scope-session',
      'scope-tool-call', 'scope-tool-name'],
  }, 'run');
  if (rest.length === 0) throw new WitnessError('E_CONFIG', `no command given\n${USAGE}`, { file: 'witness run', field: 'CMD' });
  checkPrivileges(); // before touching the state dir: the one-line answer a non-root user needs
  const out = str(flags, 'out');
  const heartbeatSeconds = Number(str(flags, 'heartbeat') ?? 10);
  if (!(heartbeatSeconds > 0)) throw new WitnessError('E_CONFIG', 'must be a positive number of seconds', { file: 'witness run', field: '--heartbeat' });

  const toStdout = out === undefined;
  const json = flags.json === true || out !== undefined || !process.stdout.isTTY;
  const fd = out !== undefined ? openSync(out, 'a', 0o600) : 1;
  // The shared exporter: a reader that stops reading costs lines here
  // (bounded, counted), never the kernel drain or the session ledger.
  const sink = new StdoutSink({ fd });
  const counts = new Map<string, number>();
  const started = process.hrtime.bigint();
  let rootPid = -1;
  let rootExited: () => void = () => {};
  const rootExitSeen = new Promise<void>((resolve) => { rootExited = resolve; });

  // The session ledger records every exported line byte for byte (docs/ledger.md).
  const ledger = flags['no-ledger'] === true ? null : await SessionWriter.create({
    ...(str(flags, 'session-dir') !== undefined ? { dir: str(flags, 'session-dir')! } : {}),
    ...(str(flags, 'sign-key') !== undefined ? { signKeyPath: str(flags, 'sign-key')! } : {}),
    ...(str(flags, 'track') !== undefined ? { trackPaths: str(flags, 'track')!.split(',') } : {}),
    command: rest,
  });
  let rootExe: string | undefined;
  // Each continuity checkpoint goes to the witnesses as it is sealed (docs/continuity.md).
  const pusher = ledger && witnesses.length > 0 ? new WitnessPusher({ stateDir: ledger.stateDir, witnesses }) : null;
  pusher?.start();

  const compactor = new ContextCompactor();
  const emit = (env: Envelope): void => {
    counts.set(env.event, (counts.get(env.event) ?? 0) + 1);
    const line = JSON.stringify(compactor.compact(env)); // process context once per key (docs/ndjson.md)
    ledger?.append(line);
    sink.write(env, json ? line : humanLine(env, true));
  };

  const manifestPath = str(flags, 'manifest');
  const manifest = manifestPath !== undefined ? loadManifest(manifestPath) : null;
  const scopeRun = str(flags, 'scope-run');
  const scopeSession = str(flags, 'scope-session');
  if ((scopeRun === undefined) !== (scopeSession === undefined)) {
    throw new WitnessError('E_CONFIG', '--scope-run and --scope-session go together', { file: 'witness run', field: scopeRun === undefined ? '--scope-run' : '--scope-session' });
  }
  let enricher: AttributionEnricher | undefined;
  const net = new NetDepth({ providers: new ProviderTable(manifest?.llm_providers ?? []) });

  const sensor = WitnessSensor.open({
    sensitivePaths: manifestSensitivePaths(manifest),
    onEvent: (ev: SensorEvent) => {
      // attribution (agent, scope, container, executable hash) and findings ride on each envelope
      // network depth (TLS hello, names on connects, llm.call) sits before attribution
      for (const out of enrichThrough(net, ev, sensor.clock, (e, env) => (enricher ? enricher.enrich(e, env) : env ? [env] : []))) emit(out);
      if (ev.kind === 'exec' && ev.pid === rootPid && rootExe === undefined) rootExe = ev.exe || ev.filename;
      if (ev.kind === 'exit' && ev.pid === rootPid) rootExited();
    },
    onDecodeError: (err) => log.warn({ err: err.message }, 'malformed wire record'),
  });
  if (sensor.sensitiveSkipped.length > 0) log.debug({ skipped: sensor.sensitiveSkipped }, 'sensitive paths absent at start');

  enricher = await AttributionEnricher.create({ clock: sensor.clock, manifest, onLateFinding: emit });
  enricher.registry.addListener((kind, scope) => emit(scopeEnvelope(kind, scope)));

  // The child's stdout must not mix into an NDJSON stdout: send it to stderr then.
  const child = sensor.spawnTraced(rest[0]!, rest.slice(1), {
    stdio: ['inherit', toStdout && json ? 2 : 'inherit', 'inherit'],
  });
  rootPid = child.pid ?? -1;
  let scopeToolCall: string | undefined;
  if (scopeRun !== undefined && child.pid !== undefined) {
    scopeToolCall = enricher.registry.open({
      runId: scopeRun, sessionId: scopeSession!, toolCallId: str(flags, 'scope-tool-call') ?? `run-${child.pid}`,
      toolName: str(flags, 'scope-tool-name') ?? null, pid: child.pid,
    }).toolCallId;
  }
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
  const beat = setInterval(() => emit(withNet(heartbeat(sensor, new Date()), net)), heartbeatSeconds * 1000);

  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: 127, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // the root's exit record may still be in flight; give it a moment, not forever
  await Promise.race([rootExitSeen, new Promise((r) => setTimeout(r, 500))]);
  clearInterval(beat);
  const stats = await sensor.close();
  if (scopeToolCall !== undefined) enricher.registry.close(scopeToolCall, scopeRun);
  await enricher.close();
  emit(withNet(heartbeat(sensor, new Date(), stats), net));
  // The sensor is closed, so nothing upstream can suffer now: wait for the
  // reader as any Unix writer would (a reader that went away ends it at once).
  await sink.close(Number.POSITIVE_INFINITY);
  if (fd !== 1) closeSync(fd);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, forward);

  if (ledger) {
    await ledger.close({
      exitCode: result.code,
      signal: result.signal,
      counters: Object.fromEntries(counts),
      drops: { ...stats.kernelDropped, user: stats.userDropped, decode_errors: stats.decodeErrors, output: sink.stats().dropped },
      executable: executableIdentity(rootExe),
    });
  }
  const witnessed = await pusher?.close();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(summaryText(counts, stats, sink.stats().dropped, seconds));
  for (const w of witnessed ?? []) process.stderr.write(`witness: ${w.witness} cosigned ${w.cosigned}, size ${w.size}, pending ${w.pending}, dropped ${w.dropped}${w.lastError ? ` (${w.lastError})` : ''}\n`);
  if (ledger) process.stderr.write(`witness: session ${ledger.dir} (check it: witness verify --pubkey KEY.pub ${ledger.dir})\n`);
  if (result.error) {
    process.stderr.write(`witness run: cannot start ${rest[0]}: ${result.error.message}\n`);
    return 127;
  }
  return exitCodeOf(result.code, result.signal);
}
