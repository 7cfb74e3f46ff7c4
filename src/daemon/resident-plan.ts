import { isAbsolute } from 'node:path';
import type { RootResult, SessionPlan } from '../cli/run-session.js';
import type { Survivor } from '../cli/run-tree.js';
import { WitnessError } from '../errors.js';

/**
 * What a resident client sends, checked before the daemon acts on it. The
 * client is root (SO_PEERCRED) and could run the same session standalone, so
 * this is about a broken or mismatched client, not privilege: every field
 * must be what a standalone run would have computed from its own flags.
 */

const bad = (what: string): never => { throw new WitnessError('E_CONFIG', `resident session: ${what}`); };
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strs = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const absent = (v: unknown): boolean => v === undefined;

function absPath(s: Record<string, unknown>, k: string): void {
  const v = s[k];
  if (!absent(v) && !(typeof v === 'string' && isAbsolute(v))) bad(`${k} must be an absolute path`);
}

export function checkPlan(raw: unknown): SessionPlan {
  if (!isObj(raw) || !isObj(raw.settings) || !isObj(raw.agentAttrs)) return bad('no plan');
  const s = raw.settings;
  if (!strs(s.command) || s.command.length === 0) bad('no command');
  if (typeof raw.json !== 'boolean') bad('json must be a boolean');
  if (typeof raw.stateDir !== 'string' || !isAbsolute(raw.stateDir)) bad('stateDir must be an absolute path');
  for (const k of ['heartbeatSeconds', 'lingerMs', 'windowMs']) if (!(typeof s[k] === 'number' && (s[k] as number) > 0)) bad(`${k} must be a positive number`);
  for (const k of ['leaveRunning', 'ledger', 'tlsMetadata', 'tlsContent']) if (typeof s[k] !== 'boolean') bad(`${k} must be a boolean`);
  if (s.tlsMetadata === true) bad('--tls-metadata runs with its own sensor');
  for (const k of ['sessionDir', 'signKey', 'manifest']) absPath(s, k);
  if (!absent(s.track) && !(strs(s.track) && s.track.every((p) => isAbsolute(p)))) bad('track must be absolute paths');
  if (!absent(s.scope)) {
    const sc = s.scope;
    if (!isObj(sc) || typeof sc.run !== 'string' || typeof sc.session !== 'string' ||
      !(absent(sc.toolCall) || typeof sc.toolCall === 'string') || !(absent(sc.toolName) || typeof sc.toolName === 'string')) bad('scope');
  }
  const plan = raw as unknown as SessionPlan;
  // the run went through this daemon: the record says so, whatever the client sent
  return { ...plan, agentAttrs: { ...plan.agentAttrs, 'witness.sensor.resident_pid': process.pid } };
}

export function checkSurvivors(raw: unknown): Survivor[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) return bad('survivors must be a list');
  return raw.map((x: unknown) => {
    if (!isObj(x) || !Number.isInteger(x.pid) || !Number.isInteger(x.ppid) || typeof x.comm !== 'string' || !(x.exe === null || typeof x.exe === 'string')) return bad('a survivor');
    return { pid: x.pid as number, ppid: x.ppid as number, comm: x.comm, exe: x.exe as string | null };
  });
}

export function checkResult(req: Record<string, unknown>): RootResult {
  const code = req.code === null || Number.isInteger(req.code) ? (req.code as number | null) : bad('code');
  const signal = req.signal === null || typeof req.signal === 'string' ? (req.signal as NodeJS.Signals | null) : bad('signal');
  return { code, signal };
}
