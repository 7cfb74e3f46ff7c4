import type { Envelope } from '../events/envelope.js';
import { eventTime } from './ndjson.js';
import { TlsUprobes, type ProbeRow, type UprobeNative } from './tls-uprobes.js';
import type { SensorEvent } from './types.js';

/**
 * --tls-metadata for a running pipeline (witness run, the daemon): arms the
 * uprobes on the host's OpenSSL files, then follows traced processes' execs
 * and first connects to attach whatever else they map, and reports each
 * file as one `tls.probe` envelope (attached, or why it cannot be).
 */
export class TlsMetadata {
  readonly uprobes: TlsUprobes;
  private readonly connected = new Set<number>();
  private closed = false;

  constructor(native: UprobeNative, private readonly emit: (env: Envelope) => void) {
    this.uprobes = new TlsUprobes(native);
    for (const r of this.uprobes.armHost()) emit(probeEnvelope(r));
  }

  /** Per sensor event, before it is mapped: an exec or a process's first TCP connect rescans its mappings. */
  onEvent(ev: SensorEvent): void {
    if (this.closed) return;
    let rows: ProbeRow[] = [];
    if (ev.kind === 'exec') {
      this.connected.delete(ev.pid);
      rows = this.uprobes.scanPid(ev.pid, true);
    } else if (ev.kind === 'connect' && !this.connected.has(ev.pid)) {
      if (this.connected.size > 65536) this.connected.clear();
      this.connected.add(ev.pid);
      rows = this.uprobes.scanPid(ev.pid, true);
    }
    for (const r of rows) this.emit(probeEnvelope(r));
  }

  /** The sensor is closing: no attach after this. */
  close(): void {
    this.closed = true;
  }
}

export function probeEnvelope(r: ProbeRow): Envelope {
  return {
    time: eventTime(BigInt(Date.now()) * 1_000_000n),
    event: 'tls.probe',
    attributes: {
      'process.pid': r.pid,
      'witness.tls.probe.path': r.path,
      'witness.tls.probe.library': r.library,
      'witness.tls.probe.attached': r.attached,
      'witness.tls.probe.reason': r.reason,
    },
  };
}
