import { readFileSync, statSync } from 'node:fs';
import { basename, join, normalize } from 'node:path';

/**
 * Default sensitive paths. `~` expands to every login user's home (root and
 * uid >= 1000 from /etc/passwd). The kernel matches by (device, inode) of the
 * file or any ancestor, so these must exist when the sensor starts; ones that
 * do not are reported as skipped.
 */
export const DEFAULT_SENSITIVE = [
  '/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/etc/sudoers.d', '/etc/ssh/ssh_host_ed25519_key',
  '/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_ecdsa_key',
  '~/.ssh', '~/.aws', '~/.gnupg', '~/.kube', '~/.docker/config.json', '~/.netrc', '~/.config/gcloud',
  '~/.git-credentials', '~/.npmrc', '~/.pypirc',
];

export interface SensitiveEntry {
  path: string;
  kernelDev: number;
  inode: bigint;
}

/**
 * /etc/passwd as last parsed, with the identity of the file: expandHome runs once per
 * `~` path for every run the daemon records (~30 reads a run), and the file rarely changes.
 * Any change (inode, size, mtime, ctime) is read again, so a user added since is covered.
 */
let parsedPasswd: { file: string; identity: string; homes: string[] } | null = null;

export function loginHomes(passwd = '/etc/passwd'): string[] {
  let identity: string;
  try {
    const st = statSync(passwd, { bigint: true });
    identity = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch { return ['/root']; }
  if (parsedPasswd?.file === passwd && parsedPasswd.identity === identity) return [...parsedPasswd.homes];
  const homes = new Set<string>();
  let text = '';
  try { text = readFileSync(passwd, 'utf8'); } catch { return ['/root']; }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    const uid = Number(f[2]);
    const home = f[5];
    if (home && home !== '/' && (uid === 0 || (uid >= 1000 && uid < 65534))) homes.add(home);
  }
  parsedPasswd = { file: passwd, identity, homes: [...homes] };
  return [...homes];
}

export function expandHome(paths: string[], homes = loginHomes()): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (p.startsWith('~/')) for (const h of homes) out.push(join(h, p.slice(2)));
    else out.push(p);
  }
  return out;
}

/** st_dev as user space sees it (new_encode_dev) → the kernel's dev_t (MKDEV). */
export function kernelDev(stDev: bigint): number {
  const major = Number((stDev >> 8n) & 0xfffn);
  const minor = Number((stDev & 0xffn) | ((stDev >> 12n) & 0xfff00n));
  return ((major << 20) | minor) >>> 0;
}

export function resolveSensitive(paths: string[]): { entries: SensitiveEntry[]; skipped: string[] } {
  const entries: SensitiveEntry[] = [];
  const skipped: string[] = [];
  for (const path of paths) {
    try {
      const st = statSync(path, { bigint: true });
      entries.push({ path, kernelDev: kernelDev(st.dev), inode: st.ino });
    } catch {
      skipped.push(path);
    }
  }
  return { entries, skipped };
}

/**
 * Denied opens (EACCES/EPERM) carry no file the kernel could identify, only
 * the path as the caller wrote it (user memory, anchored at its cwd). One is
 * a sensitive read attempt when it names a path under a sensitive entry; a
 * path the kernel could not anchor counts when it names a sensitive entry's
 * last component (`cd /var/lib && cat agent-witness/keys/host.key`).
 */
export function deniedReadFilter(sensitivePaths: string[]): (path: string) => boolean {
  const prefixes = sensitivePaths.map((p) => normalize(p).replace(/\/+$/, ''));
  const names = new Set(prefixes.map((p) => basename(p)).filter((n) => n !== ''));
  return (path: string): boolean => {
    if (!path.startsWith('/')) return path.split('/').some((c) => names.has(c));
    const p = normalize(path);
    return prefixes.some((pre) => p === pre || p.startsWith(`${pre}/`));
  };
}
