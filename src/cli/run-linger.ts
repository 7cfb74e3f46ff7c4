import { rfc3339Nanos, type Envelope } from '../events/envelope.js';
import type { Survivor } from './run-tree.js';

export { treeSurvivors, type Survivor } from './run-tree.js';

/** `process.outlived_root`: one survivor, and what the witness did with it. */
export function outlivedEnvelope(s: Survivor, rootPid: number, lingerMs: number, action: 'killed' | 'left_running', now = new Date()): Envelope {
  return {
    time: rfc3339Nanos(BigInt(now.getTime()) * 1_000_000n),
    event: 'process.outlived_root',
    attributes: {
      'process.pid': s.pid,
      'process.parent_pid': s.ppid,
      'process.command': s.comm,
      'process.executable.path': s.exe,
      'witness.root.pid': rootPid,
      'witness.linger.ms': lingerMs,
      'witness.linger.action': action,
    },
  };
}
