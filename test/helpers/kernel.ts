import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { WitnessSensor } from '../../src/sensor/sensor.js';
import { toEnvelope } from '../../src/sensor/ndjson.js';
import type { Envelope } from '../../src/events/envelope.js';
import type { SensorEvent } from '../../src/sensor/types.js';

/**
 * Real-kernel tests need root, BTF and the built addon. Without them they
 * skip — unless WITNESS_REQUIRE_KERNEL=1 (CI), where the same condition is a
 * failure: a kernel test suite that silently skipped proves nothing.
 */
export function kernelUnavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'no BTF';
  return null;
}

export const REQUIRE_KERNEL = process.env.WITNESS_REQUIRE_KERNEL === '1';

export function kernelSuite(): { skip: boolean } {
  const reason = kernelUnavailableReason();
  if (reason && REQUIRE_KERNEL) throw new Error(`WITNESS_REQUIRE_KERNEL=1 but the kernel sensor cannot run here: ${reason}`);
  return { skip: reason !== null };
}

export interface TracedRun {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  events: SensorEvent[];
  envelopes: Envelope[];
}

/**
 * One sensor shared by a test file; each run() spawns a traced command and
 * returns the events of its process tree only (parentage from fork records).
 */
export class SensorHarness {
  readonly sensor: WitnessSensor;
  readonly all: SensorEvent[] = [];
  readonly decodeErrors: string[] = [];
  private readonly rootOf = new Map<number, number>();
  private readonly byRoot = new Map<number, SensorEvent[]>();
  private readonly exitWaiters = new Map<number, () => void>();

  constructor(opts: { sensitivePaths?: string[]; budgetEvents?: number } = {}) {
    this.sensor = WitnessSensor.open({
      onEvent: (ev) => this.onEvent(ev),
      onDecodeError: (e) => this.decodeErrors.push(e.message),
      maxLatencyMs: 5,
      ...(opts.sensitivePaths !== undefined && { sensitivePaths: opts.sensitivePaths }),
      ...(opts.budgetEvents !== undefined && { budgetEvents: opts.budgetEvents }),
    });
  }

  private onEvent(ev: SensorEvent): void {
    this.all.push(ev);
    if (ev.kind === 'fork') {
      const root = this.rootOf.get(ev.pid);
      if (root !== undefined) this.rootOf.set(ev.childPid, root);
    }
    const root = this.rootOf.get(ev.pid);
    if (root === undefined) return;
    this.byRoot.get(root)?.push(ev);
    if (ev.kind === 'exit' && ev.pid === root) this.exitWaiters.get(root)?.();
  }

  async run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<TracedRun> {
    const child = this.sensor.spawnTraced(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], ...opts });
    const pid = child.pid!;
    this.rootOf.set(pid, pid);
    const events: SensorEvent[] = [];
    this.byRoot.set(pid, events);
    const sawExit = new Promise<void>((resolve) => this.exitWaiters.set(pid, resolve));
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, s) => resolve({ code: c, signal: s }));
    });
    await Promise.race([sawExit, new Promise((r) => setTimeout(r, 2000))]);
    await new Promise((r) => setTimeout(r, 30)); // stragglers from descendants
    const envelopes = events.map((e) => toEnvelope(e, this.sensor.clock)).filter((e): e is Envelope => e !== null);
    return { pid, code, signal, events, envelopes };
  }

  async close(): Promise<void> {
    await this.sensor.close();
  }
}

export function ofKind<K extends SensorEvent['kind']>(events: SensorEvent[], kind: K): Extract<SensorEvent, { kind: K }>[] {
  return events.filter((e): e is Extract<SensorEvent, { kind: K }> => e.kind === kind);
}

/** A loopback TCP listener that accepts and closes: a connect target for tests. */
export function listenLoopback(host: '127.0.0.1' | '::1'): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer((c) => c.end());
    s.listen(0, host, () => resolve(s));
  });
}

export const portOf = (s: Server): number => (s.address() as { port: number }).port;

/** A sensor harness plus IPv4 and IPv6 loopback listeners: what the network-facing kernel tests share. */
export interface SensorWithListeners { h: SensorHarness; v4: Server; v6: Server }

export async function openSensorWithListeners(): Promise<SensorWithListeners> {
  return { h: new SensorHarness(), v4: await listenLoopback('127.0.0.1'), v6: await listenLoopback('::1') };
}

export async function closeSensorWithListeners(f: Partial<SensorWithListeners>): Promise<void> {
  f.v4?.close();
  f.v6?.close();
  await f.h?.close();
}
