import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * cgroup v2 identity: where the cgroup2 hierarchy is mounted, how a cgroup id
 * (the inode number of its directory, which is what the kernel records carry)
 * maps to a path, and what a path says about containers, pods and units.
 */

export type ContainerRuntime = 'docker' | 'containerd' | 'cri-o' | 'podman' | 'kubernetes' | 'unknown';

export interface CgroupIdentity {
  /** 64-hex container id, innermost container on the path */
  containerId: string | null;
  containerRuntime: ContainerRuntime | null;
  /** Kubernetes pod uid in its canonical dashed form */
  podUid: string | null;
  /**
   * innermost systemd unit (`*.service`, `*.scope`, `*.socket`, ...), slices
   * excluded, and only from root-owned directories: a name anyone could give
   * their own delegated cgroup is not the system's unit of that name
   */
  systemdUnit: string | null;
  /** innermost unit-named cgroup under a directory a user owns (a user unit, or a name they chose) */
  userUnit: string | null;
  /** the owner of the first user-owned directory on the path (the delegated subtree's user) */
  userUnitUid: number | null;
}

/**
 * Owner uid of a cgroup directory (path relative to the mount), or null when
 * it cannot be stat'ed. Containers and system units are believed only while
 * every directory down to them is root-owned: below a delegated (user-owned)
 * directory the user names the cgroups.
 */
export type CgroupOwnerOf = (path: string) => number | null;
const ALL_ROOT: CgroupOwnerOf = () => 0;

const HEX64 = /^[0-9a-f]{64}$/;
// systemd unit name prefixes a runtime uses for a container's scope.
const SCOPE_PREFIXES: readonly [string, ContainerRuntime][] = [
  ['docker-', 'docker'],
  ['cri-containerd-', 'containerd'],
  ['nerdctl-', 'containerd'],
  ['crio-', 'cri-o'],
  ['libpod-', 'podman'],
];
// cgroupfs-driver parents whose child directory is a bare container id.
const BARE_ID_PARENTS: Record<string, ContainerRuntime> = {
  docker: 'docker',
  libpod_parent: 'podman',
  'machine.slice': 'podman',
};
const UNIT_SUFFIXES = ['.service', '.scope', '.socket', '.mount', '.swap', '.timer', '.device', '.target'];
const POD_SLICE = /^kubepods(?:-[a-z]+)?-pod([0-9a-f_]{36})\.slice$/;
const POD_DIR = /^pod([0-9a-f-]{36})$/;

function containerFromComponent(component: string, parent: string | undefined, inKubepods: boolean): { id: string; runtime: ContainerRuntime } | null {
  let name = component;
  if (name.endsWith('.scope')) name = name.slice(0, -'.scope'.length);
  for (const [prefix, runtime] of SCOPE_PREFIXES) {
    if (!name.startsWith(prefix)) continue;
    const id = name.slice(prefix.length);
    // `crio-conmon-<id>` / `libpod-conmon-<id>` hold the runtime's monitor, not the container
    if (HEX64.test(id)) return { id, runtime };
  }
  if (HEX64.test(component)) {
    const runtime = parent !== undefined ? BARE_ID_PARENTS[parent] : undefined;
    return { id: component, runtime: runtime ?? (inKubepods ? 'kubernetes' : 'unknown') };
  }
  return null;
}

/**
 * What a cgroup v2 path (as in /proc/PID/cgroup, starting with `/`) says about
 * its processes. `ownerOf` reports who owns each directory (CgroupResolver.ownerOf
 * on a live host); without it the path is parsed as if every directory were
 * root's (fixtures).
 */
export function parseCgroupPath(path: string, ownerOf: CgroupOwnerOf = ALL_ROOT): CgroupIdentity {
  const parts = path.split('/').filter((p) => p !== '');
  let containerId: string | null = null;
  let containerRuntime: ContainerRuntime | null = null;
  let podUid: string | null = null;
  let systemdUnit: string | null = null;
  let userUnit: string | null = null;
  let userUnitUid: number | null = null;
  let inKubepods = false;
  let trusted = true;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (trusted) {
      const owner = ownerOf(`/${parts.slice(0, i + 1).join('/')}`);
      if (owner !== 0) {
        trusted = false;
        userUnitUid = owner; // null: gone or unreadable, so unverifiable: trusted no more either way
      }
    }
    if (!trusted) {
      if (UNIT_SUFFIXES.some((s) => part.endsWith(s))) userUnit = part;
      continue;
    }
    if (part === 'kubepods' || part.startsWith('kubepods.') || part.startsWith('kubepods-')) inKubepods = true;
    const podSlice = POD_SLICE.exec(part);
    if (podSlice) podUid = podSlice[1]!.replace(/_/g, '-');
    const podDir = inKubepods ? POD_DIR.exec(part) : null;
    if (podDir) podUid = podDir[1]!;
    const container = containerFromComponent(part, parts[i - 1], inKubepods);
    if (container) {
      containerId = container.id;
      containerRuntime = container.runtime;
    }
    if (UNIT_SUFFIXES.some((s) => part.endsWith(s))) systemdUnit = part;
  }
  return { containerId, containerRuntime, podUid, systemdUnit, userUnit, userUnitUid };
}

/** The cgroup2 mount point from a mountinfo text (field 5 is the mount point, the fs type follows ` - `). */
export function cgroup2MountFrom(mountinfo: string): string | null {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fsType = line.slice(sep + 3).split(' ')[0];
    if (fsType !== 'cgroup2') continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    // mountinfo escapes space, tab, newline and backslash as octal
    if (mountPoint) return mountPoint.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return null;
}

export function findCgroup2Mount(mountinfoPath = '/proc/self/mountinfo'): string | null {
  try {
    return cgroup2MountFrom(readFileSync(mountinfoPath, 'utf8'));
  } catch {
    return null;
  }
}

/** The v2 line (`0::/path`) of a /proc/PID/cgroup text. */
export function v2PathFromProcCgroup(text: string): string | null {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3) || '/';
  }
  return null;
}

export interface CgroupResolverOptions {
  /** cgroup2 mount; default from /proc/self/mountinfo */
  mount?: string | null;
  /** a full walk of the hierarchy on a miss happens at most this often */
  walkIntervalMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/**
 * cgroup id → path. Ids are inode numbers of directories under the cgroup2
 * mount, so a path found in /proc/PID/cgroup is confirmed by stat'ing it, and
 * an id nobody vouches for is found by walking the hierarchy (rate-limited:
 * an id of a cgroup already removed must not trigger a walk per event).
 */
export class CgroupResolver {
  readonly mount: string | null;
  private readonly byId = new Map<bigint, string>();
  private lastWalk = -Infinity;
  private readonly walkIntervalMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(opts: CgroupResolverOptions = {}) {
    this.mount = opts.mount === undefined ? findCgroup2Mount() : opts.mount;
    this.walkIntervalMs = opts.walkIntervalMs ?? 1000;
    this.maxEntries = opts.maxEntries ?? 16384;
    this.now = opts.now ?? Date.now;
  }

  /** The inode (= cgroup id) of a cgroup path relative to the mount, or null when it does not exist. */
  idOf(path: string): bigint | null {
    if (this.mount === null) return null;
    try {
      return statSync(join(this.mount, path), { bigint: true }).ino;
    } catch {
      return null;
    }
  }

  /** Owner uid of a cgroup directory (relative to the mount); null when it is gone or there is no mount. */
  ownerOf(path: string): number | null {
    if (this.mount === null) return null;
    try {
      return statSync(join(this.mount, path)).uid;
    } catch {
      return null;
    }
  }

  /** Path for an id, using pid's /proc entry as a hint while it lives. */
  pathOf(id: bigint, pid?: number): string | null {
    const hit = this.byId.get(id);
    if (hit !== undefined) return hit;
    if (pid !== undefined) {
      const hinted = this.fromProc(id, pid);
      if (hinted !== null) return hinted;
    }
    if (this.now() - this.lastWalk >= this.walkIntervalMs) {
      this.walk();
      return this.byId.get(id) ?? null;
    }
    return null;
  }

  private remember(id: bigint, path: string): void {
    if (this.byId.size >= this.maxEntries) this.byId.clear();
    this.byId.set(id, path);
  }

  private fromProc(id: bigint, pid: number): string | null {
    let path: string | null;
    try {
      path = v2PathFromProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    } catch {
      return null;
    }
    if (path === null || this.idOf(path) !== id) return null; // moved since the event
    this.remember(id, path);
    return path;
  }

  /** Re-reads the whole hierarchy into the cache. */
  walk(): void {
    this.lastWalk = this.now();
    if (this.mount === null) return;
    this.byId.clear();
    const stack: string[] = ['/'];
    while (stack.length > 0 && this.byId.size < this.maxEntries) {
      const rel = stack.pop()!;
      const abs = join(this.mount, rel);
      try {
        this.byId.set(statSync(abs, { bigint: true }).ino, rel);
        for (const d of readdirSync(abs, { withFileTypes: true })) {
          if (d.isDirectory()) stack.push(rel === '/' ? `/${d.name}` : `${rel}/${d.name}`);
        }
      } catch {
        // removed while walking: skip it
      }
    }
  }
}
