import { log } from '../log.js';

/** What the window timer needs of the session ledger. */
export interface WindowCheckpointer { checkpoint(reason: 'window'): void }

/**
 * A signed checkpoint at every pulse window close (issue: "a checkpoint at every pulse window
 * close in run as well as the daemon"), on the same wall-clock grid as the daemon's windows
 * (multiples of windowMs since the epoch), so a run's ledger and the host's pulse can be lined
 * up window by window. A failure (an outage in progress) is logged and the next window tries
 * again: the ledger's own outage handling records what was lost. Returns the stop function.
 */
export function startWindowCheckpoints(ledger: WindowCheckpointer, windowMs: number, now: () => number = Date.now): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  // the next boundary follows the last one, not the clock: a timer that fires a millisecond
  // early must not schedule the same boundary again
  let boundary = Math.floor(now() / windowMs) * windowMs;
  const schedule = (): void => {
    boundary += windowMs;
    timer = setTimeout(fire, Math.max(0, boundary - now()));
    timer.unref(); // the agent's exit ends the run, not the timer
  };
  const fire = (): void => {
    if (stopped) return;
    try {
      ledger.checkpoint('window');
    } catch (err) {
      log.warn({ err }, 'window checkpoint failed; the next window tries again');
    }
    // a clock that jumped ahead skips the windows it passed; one checkpoint stands for them
    const current = Math.floor(now() / windowMs) * windowMs;
    if (current > boundary) boundary = current;
    schedule();
  };
  schedule();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
