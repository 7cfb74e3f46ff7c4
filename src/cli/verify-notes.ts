import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpointLine } from '../ledger/checkpoint.js';

/** What `witness verify` adds about a session beyond the integrity verdict. */

export const ROOT_AGENT_NOTE = 'WARNING: ROOT AGENT: this session\'s agent ran as root (--as-root); it could read the signing key ' +
  'and rewrite and re-sign its own record, so a valid signature does not show the agent left it alone.\n';

function isSessionDir(target: string): boolean {
  try {
    return statSync(target).isDirectory() && existsSync(join(target, 'events.ndjson'));
  } catch {
    return false;
  }
}

/** Did the session's agent run as root? Its sensor.start (the first record) says so, closed or not. */
export function agentWasPrivileged(target: string): boolean {
  if (!isSessionDir(target)) return false;
  try {
    const text = readFileSync(join(target, 'events.ndjson'), 'utf8');
    const first = (JSON.parse(text.slice(0, text.indexOf('\n') >>> 0)) as { event?: { event?: string; attributes?: Record<string, unknown> } }).event;
    return first?.event === 'sensor.start' && first.attributes?.['witness.agent.privileged'] === true;
  } catch {
    return false; // unreadable: the verifier reports what is wrong with it
  }
}

/**
 * An unclosed session (no session.json: the witness was killed): its last
 * checkpoint on disk, i.e. how much of the record is sealed. null for a
 * closed session or not a session dir.
 */
export function unclosedNote(target: string): string | null {
  if (!isSessionDir(target) || existsSync(join(target, 'session.json'))) return null;
  const records = readFileSync(join(target, 'events.ndjson'), 'utf8').split('\n').filter((l) => l !== '').length;
  let lines: string[] = [];
  try { lines = readFileSync(join(target, 'checkpoints.ndjson'), 'utf8').split('\n').filter((l) => l !== ''); } catch { /* none */ }
  for (let i = lines.length - 1; i >= 0; i--) {
    const cp = parseCheckpointLine(lines[i]!);
    if (typeof cp === 'string') continue;
    const p = cp.predicate;
    return `UNCLOSED session ${target}: last checkpoint #${p.index} (${p.reason}, ${p.time}) seals ${p.tree_size} of ${records} records; ` +
      `${records - p.tree_size} after it are unsealed\n`;
  }
  return `UNCLOSED session ${target}: no checkpoint on disk; none of its ${records} records is sealed\n`;
}
