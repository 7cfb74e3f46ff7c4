import { existsSync, openSync, readSync, closeSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TlsUprobes, type ProbeRow, type UprobeNative } from './tls-uprobes.js';

/**
 * `witness probe --tls-metadata`: attaches the TLS uprobes to the host's
 * OpenSSL files for real (as a run would) and classifies the agent CLIs and
 * TLS clients found on PATH, so the table says, per binary, whether its TLS
 * plaintext can be seen and why not.
 */

/** Agent CLIs and common TLS clients looked for on PATH (a script is followed to its interpreter). */
export const PROBE_CANDIDATES = ['claude', 'codex', 'gemini', 'opencode', 'aider', 'goose', 'cursor-agent', 'amp', 'copilot',
  'gh', 'curl', 'wget', 'python3', 'bun', 'deno', 'docker', 'kubectl', 'git'];

function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const d of (env.PATH ?? '').split(delimiter)) {
    const p = join(d, name);
    if (d && existsSync(p)) return p;
  }
  return null;
}

/** The interpreter of a #! script (`#!/usr/bin/env node` → node on PATH), or null. */
function interpreterOf(path: string, env: NodeJS.ProcessEnv): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const b = Buffer.alloc(256);
    const n = readSync(fd, b, 0, 256, 0);
    const line = b.toString('latin1', 0, n).split('\n')[0]!;
    if (!line.startsWith('#!')) return null;
    const words = line.slice(2).trim().split(/\s+/);
    const prog = words[0]?.endsWith('/env') ? words.find((w, i) => i > 0 && !w.startsWith('-')) : words[0];
    if (!prog) return null;
    return prog.startsWith('/') ? prog : onPath(prog, env);
  } finally {
    closeSync(fd);
  }
}

export function probeTable(native: UprobeNative, env: NodeJS.ProcessEnv = process.env): ProbeRow[] {
  const up = new TlsUprobes(native);
  const rows = up.armHost();
  for (const name of PROBE_CANDIDATES) {
    const found = onPath(name, env);
    if (!found) continue;
    let target = found;
    try {
      target = realpathSync(found);
    } catch { /* a dangling link is classified as unreadable */ }
    const interp = interpreterOf(target, env);
    const row = up.attach(interp ?? target, 0);
    const label = interp ? `${found} (script run by ${interp})` : found;
    if (row) rows.push({ ...row, path: label });
    else rows.push({ path: label, library: 'openssl', attached: ['(as above)'], reason: `the same file as a row above (${interp ?? target})`, pid: 0 });
  }
  return rows;
}

export function probeTableText(rows: ProbeRow[]): string[] {
  return rows.map((r) => `${(r.attached.length > 0 ? 'ok  ' : r.library === 'imports_openssl' ? 'via ' : 'NO  ')} ${r.library.padEnd(15)} ${r.path.padEnd(48)} ${r.attached.length > 0 && r.attached[0] !== '(as above)' ? `${r.attached.join(',')}  ` : ''}${r.reason}`);
}
