import { log } from '../log.js';
import { loadNative } from '../sensor/native.js';

/**
 * systemd readiness and watchdog (sd_notify(3)). The datagram is sent by the
 * addon (`sdNotify`, native/sdnotify.c): Node has no datagram Unix sockets.
 * Outside systemd ($NOTIFY_SOCKET unset) every call is a no-op.
 */
type NotifyFn = (state: string) => boolean;

let cached: NotifyFn | null | undefined;

function nativeNotify(): NotifyFn | null {
  if (cached !== undefined) return cached;
  const fn = (loadNative() as unknown as { sdNotify?: NotifyFn }).sdNotify;
  if (typeof fn !== 'function') {
    log.warn('this build of the native addon has no sdNotify; rebuild it (npm run build:native) for Type=notify');
    cached = null;
  } else {
    cached = fn;
  }
  return cached;
}

/** Sends `state` to systemd; false when not under systemd or the addon cannot. Never throws. */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!env.NOTIFY_SOCKET) return false;
  const fn = nativeNotify();
  if (!fn) return false;
  try {
    return fn(state);
  } catch (err) {
    log.warn({ err: (err as Error).message, state }, 'sd_notify failed');
    return false;
  }
}

/**
 * How often to send WATCHDOG=1: half of WatchdogSec (WATCHDOG_USEC), as
 * sd_watchdog_enabled(3) advises; null when the watchdog is off or meant for
 * another process (WATCHDOG_PID).
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(100, Math.floor(usec / 1000 / 2));
}
