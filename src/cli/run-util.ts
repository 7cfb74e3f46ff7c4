import { constants } from 'node:os';

// Small helpers both `witness run` paths share; node: builtins only (the thin entry loads this).

export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const num = signal ? constants.signals[signal] : undefined;
  return 128 + (num ?? 0);
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
