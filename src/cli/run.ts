import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { WitnessError } from '../errors.js';
import { resolveStateDir } from '../ledger/state.js';
import { runPath } from '../pipeline/run-path.js';
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
import { TlsMetadata } from '../sensor/tls-run.js';
import { WitnessSensor, type SensorStats } from '../sensor/sensor.js';
import { takeWitnessFlags, WitnessPusher } from '../cosigner/push.js';
import type { SensorEvent } from '../sensor/types.js';
import { parseDuration } from '../pulse/duration.js';
import { HOUR_MS } from '../pulse/options.js';
import { startWindowCheckpoints } from './run-windows.js';
import { GuardedAgent, makeRunCgroup, removeRunCgroup, shimPath } from '../sensor/guardian.js';
import { openOutputFile } from '../ledger/safe-path.js';
import { parseArgs, str } from './args.js';
import { agentAttributes, planAgent } from './run-agent.js';
import { outlivedEnvelope, treeSurvivors } from './run-linger.js';
import { ResidentSensor, type ResidentOutcome } from './run-resident.js';
import { cachedHasher } from './run-hash-cache.js';

const USAGE = 'usage: witness run [--user USER[:GROUP] | --as-root] [--allow-io-uring] [--linger DURATION] [--leave-running] [--window DURATION] [--no-resident] [--tls-metadata [--tls-content]]\n' +
  '                   [--json] [--out FILE] [--heartbeat SECONDS] [--sign-key FILE] [--session-dir DIR]\n' +
  '                   [--track PATH[,PATH...]] [--no-ledger] [--manifest agents.json] [--witness URL=VKEYFILE ...]\n' +
  '                   [--scope-run R --scope-session S [--scope-tool-call T] [--scope-tool-name N]]\n' +
  '                   [--budget-events N] [--budget-window-ms MS] -- CMD [ARGS...]';

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

const DEFAULT_LINGER_MS = 5000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** true when `p` settles within `ms`; the timer never outlives the answer (it would hold the process open). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), ms); });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Executable identity for session.json: the binary the root actually loaded,
 * as the enricher hashed it at the exec event (through /proc/PID/exe). Never
 * a re-read of the path after the run: by then the file may be another one.
 */
function loadedExecutable(env: Envelope | null, fallbackPath: string): { path?: string; sha256?: string; hash_status?: string } {
  const a = env?.attributes ?? {};
  const path = typeof a['process.executable.path'] === 'string' ? a['process.executable.path'] : fallbackPath;
  const sha = a['witness.executable.sha256'];
  return typeof sha === 'string' ? { path, sha256: sha, hash_status: 'ok' } : { path, hash_status: String(a['witness.executable.hash_status'] ?? 'unavailable') };
}

async function settleExecutable(exe: { path?: string; sha256?: string; hash_status?: string } | undefined, pending: Promise<string | null> | undefined) {
  if (!exe || exe.hash_status !== 'pending' || !pending) return exe ?? {};
  const sha = await pending;
  return sha !== null ? { ...exe, sha256: sha, hash_status: 'ok' } : { ...exe, hash_status: 'unavailable' };
}

function tlsFlags(flags: Record<string, unknown>): { metadata: boolean; content: boolean } {
  const metadata = flags['tls-metadata'] === true;
  const content = flags['tls-content'] === true;
  if (content && !metadata) throw new WitnessError('E_CONFIG', '--tls-content needs --tls-metadata', { file: 'witness run', field: '--tls-content' });
  return { metadata, content };
}

export async function run(rawArgv: string[]): Promise<number> {
  const { witnesses, argv } = takeWitnessFlags(rawArgv);
  const { flags, rest } = parseArgs(argv, {
    booleans: ['json', 'no-ledger', 'as-root', 'allow-io-uring', 'leave-running', 'no-resident', 'tls-metadata', 'tls-content'],
    strings: ['out', 'heartbeat', 'sign-key', 'session-dir', 'track', 'manifest', 'scope-run', 'scope-session',
      'scope-tool-call', 'scope-tool-name', 'user', 'linger', 'budget-events', 'budget-window-ms', 'window'],
  }, 'run');
  if (rest.length === 0) throw new WitnessError('E_CONFIG', `no command given\n${USAGE}`, { file: 'witness run', field: 'CMD' });
  checkPrivileges(); // before touching the state dir: the one-line answer a non-root user needs
  // Who the agent runs as is settled before anything is created or spawned.
  const shim = shimPath();
  const plan = planAgent({ ...(str(flags, 'user') !== undefined && { user: str(flags, 'user')! }), asRoot: flags['as-root'] === true });
  const allowIoUring = flags['allow-io-uring'] === true;
  const leaveRunning = flags['leave-running'] === true;
  const lingerMs = str(flags, 'linger') !== undefined ? parseDuration(str(flags, 'linger')!, '--linger') : DEFAULT_LINGER_MS;
  // the pulse window grid the session ledger checkpoints on (the daemon's default: 1 h)
  const windowMs = str(flags, 'window') !== undefined ? parseDuration(str(flags, 'window')!, '--window') : HOUR_MS;
  if (plan.privileged) process.stderr.write('witness: WARNING: --as-root: the agent runs as root and could rewrite its own record; the session says so\n');
  const out = str(flags, 'out');
  const heartbeatSeconds = Number(str(flags, 'heartbeat') ?? 10);
  if (!(heartbeatSeconds > 0)) throw new WitnessError('E_CONFIG', 'must be a positive number of seconds', { file: 'witness run', field: '--heartbeat' });
  // fairness under flood (docs/ndjson.md, sensor.suppressed): 0 events = no budget
  const budgetEvents = str(flags, 'budget-events') !== undefined ? Number(str(flags, 'budget-events')) : undefined;
  if (budgetEvents !== undefined && !(Number.isInteger(budgetEvents) && budgetEvents >= 0)) {
    throw new WitnessError('E_CONFIG', 'must be a whole number of records (0: no budget)', { file: 'witness run', field: '--budget-events' });
  }
  const budgetWindowMs = str(flags, 'budget-window-ms') !== undefined ? Number(str(flags, 'budget-window-ms')) : undefined;
  if (budgetWindowMs !== undefined && !(Number.isInteger(budgetWindowMs) && budgetWindowMs > 0)) {
    throw new WitnessError('E_CONFIG', 'must be a positive number of milliseconds', { file: 'witness run', field: '--budget-window-ms' });
  }

  const toStdout = out === undefined;
  const json = flags.json === true || out !== undefined || !process.stdout.isTTY;
  const fd = out !== undefined ? openOutputFile(out) : 1;
  const started = process.hrtime.bigint();
  let rootPid = -1;
  let rootExited: () => void = () => {};
  const rootExitSeen = new Promise<void>((resolve) => { rootExited = resolve; });
  const exitedPids = new Set<number>();
  const cgroup = makeRunCgroup();
  // A running daemon's sensor traces the agent when it will (docs/resident.md); else this run loads its own.
  let onSensorEvent: (ev: SensorEvent) => void = () => {};
  const onDecodeError = (err: WitnessError): void => log.warn({ err: err.message }, 'malformed wire record');
  // --tls-metadata: OpenSSL uprobes, metadata only; --tls-content adds content (docs/privacy.md).
  // The uprobes are this run's own: it loads its own sensor.
  const tlsMeta = tlsFlags(flags);
  const residentOff = flags['no-resident'] === true ? '--no-resident' : tlsMeta.metadata ? '--tls-metadata' : process.env.WITNESS_RESIDENT === 'off' ? 'WITNESS_RESIDENT=off' : null;
  const resident: ResidentOutcome = residentOff !== null ? { sensor: null, reason: residentOff } : await ResidentSensor.connect({
    onEvent: (ev) => onSensorEvent(ev), onDecodeError,
    ...(budgetEvents !== undefined ? { budgetEvents } : {}),
    ...(budgetWindowMs !== undefined ? { budgetWindowMs } : {}),
  });
  if (resident.sensor === null) log.debug({ reason: resident.reason }, 'no resident sensor: loading our own');
  const agentAttrs = agentAttributes(plan, allowIoUring, cgroup);
  if (resident.sensor !== null) agentAttrs['witness.sensor.resident_pid'] = resident.sensor.daemon.daemon_pid;

  // The session ledger records every exported line byte for byte (docs/ledger.md).
  const ledger = flags['no-ledger'] === true ? null : await SessionWriter.create({
    ...(str(flags, 'session-dir') !== undefined ? { dir: str(flags, 'session-dir')! } : {}),
    ...(str(flags, 'sign-key') !== undefined ? { signKeyPath: str(flags, 'sign-key')! } : {}),
    ...(str(flags, 'track') !== undefined ? { trackPaths: str(flags, 'track')!.split(',') } : {}),
    command: rest,
    startAttributes: agentAttrs,
  });
  let rootExe: { path?: string; sha256?: string; hash_status?: string } | undefined;
  // a big root binary is hashed in the background: the same fd's digest, awaited for session.json
  let rootExePending: Promise<string | null> | undefined;
  // Each continuity checkpoint goes to the witnesses as it is sealed (docs/continuity.md).
  const pusher = ledger && witnesses.length > 0 ? new WitnessPusher({ stateDir: ledger.stateDir, witnesses }) : null;
  pusher?.start();

  // count, compact, serialise once, ledger + output (src/pipeline/run-path.ts)
  const { emit, counts, sink, sinkFailures } = runPath({ fd, ledger, json });

  const manifestPath = str(flags, 'manifest');
  const manifest = manifestPath !== undefined ? loadManifest(manifestPath) : null;
  const scopeRun = str(flags, 'scope-run');
  const scopeSession = str(flags, 'scope-session');
  if ((scopeRun === undefined) !== (scopeSession === undefined)) {
    throw new WitnessError('E_CONFIG', '--scope-run and --scope-session go together', { file: 'witness run', field: scopeRun === undefined ? '--scope-run' : '--scope-session' });
  }
  let enricher: AttributionEnricher | undefined;
  let tls: TlsMetadata | null = null;
  const net = new NetDepth({ providers: new ProviderTable(manifest?.llm_providers ?? []), tls: { keepContent: tlsMeta.content } });

  // The witness's own state is sensitive: every read the agent attempts is evidence.
  const ownPaths = [ledger?.stateDir ?? resolveStateDir(), ledger?.dir, str(flags, 'sign-key')].filter((p): p is string => p !== undefined);
  const sensitivePaths = [...manifestSensitivePaths(manifest), ...ownPaths];
  onSensorEvent = (ev: SensorEvent) => {
    // attribution (agent, scope, container, executable hash) and findings ride on each envelope
    // network depth (TLS hello, names on connects, llm.call) sits before attribution
    tls?.onEvent(ev);
    const isRootExec = ev.kind === 'exec' && ev.pid === rootPid && rootExe === undefined;
    for (const out of enrichThrough(net, ev, sensor.clock, (e, env) => (enricher ? enricher.enrich(e, env) : env ? [env] : []))) {
      // the root's executable as hashed at its exec, before emit may compact the record
      if (isRootExec && out.event === 'process.exec' && rootExe === undefined) rootExe = loadedExecutable(out, ev.exe || ev.filename);
      emit(out);
    }
    if (isRootExec && rootExe === undefined) rootExe = loadedExecutable(null, ev.exe || ev.filename);
    if (isRootExec && rootExe?.hash_status === 'pending' && enricher && ev.kind === 'exec') {
      rootExePending = enricher.hasher.identify(ev.pid, ev.exe, ev.filename, ev.cwd).pending; // joins the in-flight hash
    }
    if (ev.kind === 'exit') {
      exitedPids.add(ev.pid);
      if (ev.pid === rootPid) rootExited();
    }
  };
  resident.sensor?.useSensitive(sensitivePaths);
  const sensor = resident.sensor ?? WitnessSensor.open({
    sensitivePaths,
    ...(budgetEvents !== undefined ? { budgetEvents } : {}),
    ...(budgetWindowMs !== undefined ? { budgetWindowMs } : {}),
    onEvent: onSensorEvent,
    onDecodeError,
  });
  if (tlsMeta.metadata && sensor instanceof WitnessSensor) tls = new TlsMetadata(sensor.native, emit);
  if (sensor.sensitiveSkipped.length > 0) log.debug({ skipped: sensor.sensitiveSkipped }, 'sensitive paths absent at start');

  // the parent chain's executables (node, the shell) were hashed by the previous run: reuse its digests
  const hashCache = cachedHasher(ledger?.stateDir ?? resolveStateDir());
  enricher = await AttributionEnricher.create({ clock: sensor.clock, manifest, onLateFinding: emit, hasher: hashCache.hasher });
  enricher.registry.addListener((kind, scope) => emit(scopeEnvelope(kind, scope)));

  // The child's stdout must not mix into an NDJSON stdout: send it to stderr then.
  const agent = new GuardedAgent(sensor, shim, {
    command: rest, cred: plan.cred, cgroup, allowIoUring, env: plan.env,
    stdio: ['inherit', toStdout && json ? 2 : 'inherit', 'inherit'],
    // sensor.start (who the agent runs as) is sealed before the agent runs a single instruction:
    // a witness killed early still leaves a signed start of the session
    onPid: (pid) => { rootPid = pid; openScope(pid); ledger?.checkpoint('time'); },
  });
  let endedUnobserved = false;
  // Nothing observes the tree once the daemon's stream breaks: end it, as the guardian does when the witness dies.
  if (resident.sensor) {
    resident.sensor.onBroken = (why) => {
      endedUnobserved = true;
      process.stderr.write(`witness run: the daemon's stream broke (${why}); ending the agent's tree, it must not run on unobserved\n`);
      void agent.finish('kill');
    };
  }
  let scopeToolCall: string | undefined;
  const openScope = (pid: number): void => {
    if (scopeRun === undefined) return;
    scopeToolCall = enricher!.registry.open({
      runId: scopeRun, sessionId: scopeSession!, toolCallId: str(flags, 'scope-tool-call') ?? `run-${pid}`,
      toolName: str(flags, 'scope-tool-name') ?? null, pid,
    }).toolCallId;
  };
  let startError: Error | undefined;
  try {
    rootPid = await agent.started;
  } catch (err) {
    startError = err as Error;
  }
  if (agent.cgroupError) log.warn({ cgroup, err: agent.cgroupError }, 'agent not placed in its cgroup; the tree is ended by ancestry only');
  const forward = (sig: NodeJS.Signals): void => { agent.signal(sig); };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
  const beat = setInterval(() => emit(withNet(heartbeat(sensor, new Date()), net)), heartbeatSeconds * 1000);
  const stopWindows = ledger ? startWindowCheckpoints(ledger, windowMs) : () => {};

  const exited = await agent.rootExit;
  // a tree ended because nothing observed it any more: SIGKILL is what happened to it, whatever the guardian reported
  const result: typeof exited = endedUnobserved ? { code: null, signal: 'SIGKILL' } : exited;
  // the root's exit record may still be in flight; give it a moment, not forever
  await within(rootExitSeen, 500);
  // Descendants that outlive the root stay traced until they exit, up to --linger; then they are named and ended.
  const lingered = await within(agent.treeEmpty, lingerMs);
  const survivors = lingered || rootPid < 0 ? [] : treeSurvivors(agent.guardian.pid!);
  for (const s of survivors) emit(outlivedEnvelope(s, rootPid, lingerMs, leaveRunning ? 'left_running' : 'killed'));
  await agent.finish(leaveRunning ? 'leave' : 'kill');
  if (!leaveRunning) {
    // their exit records are evidence too: wait for them, briefly
    for (let i = 0; i < 50 && survivors.some((s) => !exitedPids.has(s.pid)); i++) await sleep(20);
  }
  const cgroupRemoved = leaveRunning && survivors.length > 0 ? false : removeRunCgroup(cgroup);
  if (!cgroupRemoved) log.warn({ cgroup }, 'run cgroup left in place (processes left running)');
  clearInterval(beat);
  stopWindows();
  tls?.close();
  const stats = await sensor.close();
  for (const [src, env] of net.tls.flushAll()) for (const x of enricher.enrich(src, env)) emit(x);
  if (scopeToolCall !== undefined) enricher.registry.close(scopeToolCall, scopeRun);
  await enricher.close();
  hashCache.save();
  emit(withNet(heartbeat(sensor, new Date(), stats), net));
  // The sensor is closed, so nothing upstream can suffer now: wait for the
  // reader as any Unix writer would (a reader that went away ends it at once).
  await sink.close(Number.POSITIVE_INFINITY);
  if (fd !== 1) closeSync(fd);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, forward);

  let ledgerCloseError: Error | null = null;
  if (ledger) {
    await ledger.close({
      exitCode: result.code,
      signal: result.signal,
      counters: Object.fromEntries(counts),
      drops: { ...stats.kernelDropped, user: stats.userDropped, decode_errors: stats.decodeErrors, output: sink.stats().dropped, ...sinkFailures.drops() },
      executable: await settleExecutable(rootExe, rootExePending),
      agent: { ...agentAttrs, 'witness.linger.ms': lingerMs, 'witness.linger.leave_running': leaveRunning, 'witness.linger.survivors': survivors.map((x) => String(x.pid)) },
    }).catch((err: Error) => { ledgerCloseError = err; });
  }
  const witnessed = await pusher?.close();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(summaryText(counts, stats, sink.stats().dropped, seconds));
  process.stderr.write(sinkFailures.summary());
  if (ledgerCloseError) process.stderr.write(`witness: the session ledger could not be closed (${(ledgerCloseError as Error).message}); it stays unclosed and the next witness run seals it\n`);
  for (const w of witnessed ?? []) process.stderr.write(`witness: ${w.witness} cosigned ${w.cosigned}, size ${w.size}, pending ${w.pending}, dropped ${w.dropped}${w.lastError ? ` (${w.lastError})` : ''}\n`);
  if (ledger) process.stderr.write(`witness: session ${ledger.dir} (check it: witness verify --pubkey KEY.pub ${ledger.dir})\n`);
  if (startError) {
    process.stderr.write(`witness run: ${startError.message}\n`);
    return 127;
  }
  if (agent.execError) {
    process.stderr.write(`witness run: cannot start ${rest[0]}: ${agent.execError}\n`);
    return 127;
  }
  return exitCodeOf(result.code, result.signal);
}
