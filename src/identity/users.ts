import { readFileSync } from 'node:fs';

/**
 * uid → user name from /etc/passwd. Re-read on a miss (a user added after
 * start), at most once per `reloadMs`, so a uid with no name (a container's
 * or a sandbox's) costs one map lookup per event, not one file read.
 */
export class UserNames {
  private names = new Map<number, string>();
  private lastLoad = -Infinity;

  constructor(
    private readonly passwdPath = '/etc/passwd',
    private readonly reloadMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  nameOf(uid: number): string | null {
    const hit = this.names.get(uid);
    if (hit !== undefined) return hit;
    if (this.now() - this.lastLoad < this.reloadMs) return null;
    this.load();
    return this.names.get(uid) ?? null;
  }

  private load(): void {
    this.lastLoad = this.now();
    let text: string;
    try {
      text = readFileSync(this.passwdPath, 'utf8');
    } catch {
      return;
    }
    const names = new Map<number, string>();
    for (const line of text.split('\n')) {
      const f = line.split(':');
      const uid = Number(f[2]);
      if (f[0] && f.length >= 3 && Number.isInteger(uid) && !names.has(uid)) names.set(uid, f[0]);
    }
    this.names = names;
  }
}
