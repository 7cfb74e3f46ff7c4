import { constants } from 'node:os';

// Small helpers both `witness run` paths share; node: builtins only (the thin entry loads this).

export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const num = signal ? constants.signals[signal] : undefined;
  return 128 + (num ?? 0);
}

/**
 * The exit code `witness run` returns, the same on both paths: 127 (with one
 * line on stderr) when the agent never started, else the agent's own code, or
 * 128 + its signal.
 */
export function runExitCode(
  command: string, startError: Error | undefined, execError: string | undefined | null,
  code: number | null, signal: NodeJS.Signals | null,
): number {
  if (startError) {
    process.stderr.write(`witness run: ${startError.message}\n`);
    return 127;
  }
  if (execError) {
    process.stderr.write(`witness run: cannot start ${command}: ${execError}\n`);
    return 127;
  }
  return exitCodeOf(code, signal);
}

/** true when `p` settles within `ms`; the timer never outlives the answer (it would hold the process open). */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), ms); });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
