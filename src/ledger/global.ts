import type { KeyObject } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { nowRfc3339 } from './clock.js';
import { LedgerLog } from './log-writer.js';
import { GLOBAL_CHECKPOINTS_FILE, GLOBAL_EVENTS_FILE, ensurePrivateDir, withFileLock } from './state.js';

/**
 * The host-wide ledger: one hash-chained, Merkle-sealed row per finished
 * session (and per daemon epoch/segment), in `<stateDir>/ledger.ndjson`,
 * with a signed checkpoint after every row in `ledger.checkpoints.ndjson`.
 *
 * Appending is O(1) in the ledger's length: under the lock it reads only the
 * last checkpoint line and the rows after it (none unless a writer crashed),
 * appends, seals, and releases.
 */
export interface SessionRow {
  kind: 'session';
  session_id: string;
  dir: string;
  started: string;
  ended: string;
  command: string[];
  exit_code: number | null;
  tree_size: number;
  root_hash: string;
  chain_head: string;
  final_checkpoint_sha256: string;
  session_sha256: string;
  key_id: string;
}

export interface DaemonSegmentRow {
  kind: 'daemon_segment';
  epoch_id: string;
  segment: number;
  dir: string;
  tree_size: number;
  root_hash: string;
  chain_head: string;
  final_checkpoint_sha256: string;
  key_id: string;
}

export type GlobalRow = SessionRow | DaemonSegmentRow;

export interface GlobalAppendResult { seq: number; checkpointSha256: string }

export function appendGlobalRow(stateDir: string, key: KeyObject, row: GlobalRow): GlobalAppendResult {
  ensurePrivateDir(stateDir);
  return withFileLock(path.join(stateDir, 'ledger.lock'), () => {
    const log = new LedgerLog({
      dir: stateDir,
      eventsFile: GLOBAL_EVENTS_FILE,
      checkpointsFile: GLOBAL_CHECKPOINTS_FILE,
      log: 'global',
      logId: `host:${os.hostname()}`,
      key,
      checkpointEverySeconds: 0,
      flushIntervalMs: 0,
      allowSignerChange: true,
    });
    try {
      const rec = log.recovered;
      if (rec && (rec.lost.bytes > 0 || rec.tornCheckpointBytes > 0 || log.unsealedCount > 0)) {
        // A previous appender died mid-append: say so in the chain itself.
        log.markRestart();
        log.append(JSON.stringify({
          kind: 'recovery',
          time: nowRfc3339(),
          lost_bytes: rec.lost.bytes,
          lost_sha256: rec.lost.sha256,
          lost_file: rec.lost.file,
          unsealed_rows_kept: log.unsealedCount,
          torn_checkpoint_bytes: rec.tornCheckpointBytes,
        }));
      }
      const seq = log.append(JSON.stringify(row));
      const checkpointSha256 = log.checkpoint('append');
      return { seq, checkpointSha256 };
    } finally {
      log.close();
    }
  });
}
