import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/package-root.js';

export const WITNESS_BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');

export interface Done { code: number | null; stdout: string; stderr: string }

/** Async, so servers in this process keep answering while the CLI runs; killed after 30 s. */
export function runCollect(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Done> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = ''; let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.once('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

export interface TestDaemon { proc: ChildProcess; stderr(): string }

/** `witness daemon --config CONFIG`, resolved once its resident socket `sock` listens. */
export async function startResidentDaemon(config: string, sock: string): Promise<TestDaemon> {
  let err = '';
  const proc = spawn(process.execPath, [WITNESS_BIN, 'daemon', '--config', config], {
    env: { ...process.env, WITNESS_LOG_LEVEL: 'info', NOTIFY_SOCKET: '' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  for (let i = 0; i < 600 && !err.includes('resident socket listening'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(sock)) throw new Error(`the daemon did not open its resident socket:\n${err}`);
  return { proc, stderr: () => err };
}

/** SIGTERM, and wait for the exit (at once when it already exited). */
export async function stopDaemon(d: TestDaemon | undefined): Promise<void> {
  if (!d) return;
  d.proc.kill('SIGTERM');
  await new Promise((r) => (d.proc.exitCode === null && d.proc.signalCode === null ? d.proc.once('exit', r) : r(null)));
}
