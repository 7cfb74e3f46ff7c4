import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { classifyElf, type TlsLibrary } from './elf-tls.js';

/**
 * Where the --tls-metadata uprobes go. A uprobe is set on a file (by inode)
 * and fires in every process that maps it; the BPF programs keep only traced
 * processes. So each library file is attached once: at start the host's
 * libssl.so.3 and the node binaries (so a traced process's first request is
 * seen), then whatever a traced process maps that was not seen yet, read
 * from /proc/PID/maps when it execs and when it first connects. Each file
 * gets one probe row: attached, or why not (docs/privacy.md, `witness probe`).
 */

export interface ProbeRow {
  path: string;
  library: TlsLibrary;
  /** functions attached (SSL_write, SSL_read, SSL_write_ex, SSL_read_ex) */
  attached: string[];
  /** why not (or what the library is) */
  reason: string;
  /** the traced process whose mappings named the file (0: armed at start) */
  pid: number;
}

export interface UprobeNative {
  attachTlsUprobes(path: string): { attached: number; error: number; functions: { func: string; error: number }[] };
}

const LIBSSL_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib', '/usr/local/ssl/lib64', '/usr/lib/aarch64-linux-gnu'];
const LIBSSL_NAMES = ['libssl.so.3', 'libssl.so.1.1'];

/** The files armed at start: libssl.so.3 (and 1.1) where they are, node on PATH and this process's own node. */
export function hostTlsCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const out = new Set<string>();
  for (const d of LIBSSL_DIRS) for (const n of LIBSSL_NAMES) if (existsSync(join(d, n))) out.add(real(join(d, n)));
  for (const d of (env.PATH ?? '').split(delimiter)) if (d && existsSync(join(d, 'node'))) out.add(real(join(d, 'node')));
  out.add(real(process.execPath));
  return [...out];
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** Executable file mappings of a process (/proc/PID/maps lines with x and a path), deduplicated. */
export function mappedFiles(mapsText: string): string[] {
  const out = new Set<string>();
  for (const line of mapsText.split('\n')) {
    const m = /^\S+ ([r-][w-]x[ps-]) \S+ \S+ (\d+)\s+(\/.*)$/.exec(line);
    if (!m || m[2] === '0' || m[3]!.endsWith(' (deleted)')) continue;
    out.add(m[3]!);
  }
  return [...out];
}

export class TlsUprobes {
  readonly rows: ProbeRow[] = [];
  private readonly seenPaths = new Set<string>();
  private readonly scanned = new Set<number>();

  constructor(private readonly native: UprobeNative) {}

  /** Attaches to one file (once); returns its row, or null when it was seen already. */
  attach(path: string, pid: number, viaRoot?: string): ProbeRow | null {
    const key = real(path);
    if (this.seenPaths.has(key)) return null;
    this.seenPaths.add(key);
    const file = viaRoot ?? path;
    const c = classifyElf(file);
    const row: ProbeRow = { path, library: c.library, attached: [], reason: c.reason, pid };
    if (c.library === 'openssl') {
      const r = this.native.attachTlsUprobes(file);
      if (r.error === -17) return null; // the same inode under another name: attached already
      row.attached = r.functions.filter((f) => f.error === 0).map((f) => f.func);
      const failed = r.functions.filter((f) => f.error !== 0 && c.sslSymbols.includes(f.func));
      if (r.error !== 0) row.reason = `attach failed: errno ${-r.error}`;
      else if (failed.length > 0) row.reason = `${c.reason}; not attached: ${failed.map((f) => `${f.func} (errno ${-f.error})`).join(', ')}`;
    }
    this.rows.push(row);
    return row;
  }

  armHost(): ProbeRow[] {
    return hostTlsCandidates().map((p) => this.attach(p, 0)).filter((r): r is ProbeRow => r !== null);
  }

  /**
   * A traced process's mappings: attaches what is new. `again` rescans a
   * process seen before (its first connect, after the loader mapped its libraries).
   */
  scanPid(pid: number, again = false): ProbeRow[] {
    if (this.scanned.has(pid) && !again) return [];
    this.scanned.add(pid);
    if (this.scanned.size > 65536) this.scanned.delete(this.scanned.values().next().value!);
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      return []; // gone already
    }
    const out: ProbeRow[] = [];
    for (const p of mappedFiles(maps)) {
      // through the process's root: its mount namespace may differ from ours
      const r = this.attach(p, pid, `/proc/${pid}/root${p}`);
      if (r) out.push(r);
    }
    return out;
  }
}
