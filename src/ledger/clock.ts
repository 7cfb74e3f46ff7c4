import fs from 'node:fs';
import { rfc3339Nanos } from '../events/envelope.js';

// Wall clock at ns resolution: Date.now() anchors, hrtime supplies the sub-ms part monotonically.
const anchorNs = BigInt(Date.now()) * 1_000_000n;
const anchorHr = process.hrtime.bigint();

export function nowNs(): bigint {
  return anchorNs + (process.hrtime.bigint() - anchorHr);
}

export function nowRfc3339(): string {
  return rfc3339Nanos(nowNs());
}

let bootId: string | undefined;
/** The kernel's per-boot UUID: distinguishes "restarted after reboot" from "restarted in the same boot". */
export function sensorBootId(): string {
  if (bootId === undefined) {
    try { bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); } catch { bootId = 'unknown'; }
  }
  return bootId;
}
