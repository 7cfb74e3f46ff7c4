import { closeSync } from 'node:fs';
import { WitnessError } from '../errors.js';
import { resolveStateDir } from '../ledger/state.js';
import { log } from '../log.js';
import { GuardedAgent, removeRunCgroup } from '../sensor/guardian.js';
import { TlsMetadata } from '../sensor/tls-run.js';
import { WitnessSensor } from '../sensor/sensor.js';
import { WitnessPusher } from '../cosigner/push.js';
import { agentAttributes } from './run-agent.js';
import type { RunContext } from './run-entry.js';
import { runExitCode, within } from './run-util.js';
import { treeSurvivors } from './run-tree.js';
import { RunSession } from './run-session.js';

export { summaryText } from './run-session.js';

/**
 * `witness run` with a sensor of its own: loads, verifies and attaches the
 * probes, spawns the agent through the guardian and records the tree
 * (run-session.ts). run-entry.ts comes here when no daemon can record the run
 * (docs/resident.md), with the flags parsed and the agent's identity settled.
 */
export async function runOwnSensor(ctx: RunContext): Promise<number> {
  const { settings: s, plan, fd } = ctx;
  const agentAttrs = agentAttributes(plan, ctx.allowIoUring, ctx.cgroup);
  // Each continuity checkpoint goes to the witnesses as it is sealed (docs/continuity.md).
  const session = await RunSession.open({ settings: s, json: ctx.json, stateDir: resolveStateDir(), agentAttrs }, { fd },
    ctx.witnesses.length > 0 ? (stateDir) => new WitnessPusher({ stateDir, witnesses: ctx.witnesses }) : undefined);
  const onDecodeError = (err: WitnessError): void => log.warn({ err: err.message }, 'malformed wire record');
  const sensor = WitnessSensor.open({
    sensitivePaths: session.sensitivePaths,
    ...(s.budgetEvents !== undefined ? { budgetEvents: s.budgetEvents } : {}),
    ...(s.budgetWindowMs !== undefined ? { budgetWindowMs: s.budgetWindowMs } : {}),
    onEvent: session.onSensorEvent,
    onDecodeError,
  });
  // --tls-metadata: OpenSSL uprobes, metadata only; --tls-content adds content (docs/privacy.md).
  if (s.tlsMetadata) session.tls = new TlsMetadata(sensor.native, session.emit);
  if (sensor.sensitiveSkipped.length > 0) log.debug({ skipped: sensor.sensitiveSkipped }, 'sensitive paths absent at start');
  await session.attach(sensor);

  // The child's stdout must not mix into an NDJSON stdout: send it to stderr then.
  const agent = new GuardedAgent(sensor, ctx.shim, {
    command: s.command, cred: plan.cred, cgroup: ctx.cgroup, allowIoUring: ctx.allowIoUring, env: plan.env,
    stdio: ['inherit', ctx.toStdout && ctx.json ? 2 : 'inherit', 'inherit'],
    onPid: (pid) => session.onPid(pid),
  });
  let startError: Error | undefined;
  try {
    session.rootPid = await agent.started;
  } catch (err) {
    startError = err as Error;
  }
  if (agent.cgroupError) log.warn({ cgroup: ctx.cgroup, err: agent.cgroupError }, 'agent not placed in its cgroup; the tree is ended by ancestry only');
  const forward = (sig: NodeJS.Signals): void => { agent.signal(sig); };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
  session.startTimers();

  const exited = await agent.rootExit;
  // the root's exit record may still be in flight; give it a moment, not forever
  await within(session.rootExitSeen, 500);
  // Descendants that outlive the root stay traced until they exit, up to --linger; then they are named and ended.
  const lingered = await within(agent.treeEmpty, s.lingerMs);
  if (lingered) session.markDrained(); // the tree ended by itself: its records are all written now
  const survivors = lingered || session.rootPid < 0 ? [] : treeSurvivors(agent.guardian.pid!);
  session.outlived(survivors);
  await agent.finish(s.leaveRunning ? 'leave' : 'kill');
  await session.survivorsExited(survivors);
  session.markDrained(); // (no-op when the tree ended by itself above)
  const cgroupRemoved = s.leaveRunning && survivors.length > 0 ? false : removeRunCgroup(ctx.cgroup);
  if (!cgroupRemoved) log.warn({ cgroup: ctx.cgroup }, 'run cgroup left in place (processes left running)');
  const summary = await session.close(exited, survivors);
  if (fd !== 1) closeSync(fd);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, forward);
  process.stderr.write(summary);
  return runExitCode(s.command[0]!, startError, agent.execError, exited.code, exited.signal);
}
