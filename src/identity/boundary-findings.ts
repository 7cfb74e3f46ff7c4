import type { Attributes } from '../events/envelope.js';
import type { EventName } from '../events/names.js';
import type { Manifest } from '../manifest/schema.js';
import { manifestSensitivePaths } from '../manifest/sensitive.js';
import { expandHome } from '../sensor/sensitive.js';
import type { SensorEvent } from '../sensor/types.js';
import { LAYOUT as L } from '../sensor/layout.js';
import { BPF_CMDS } from '../sensor/ndjson-boundary.js';

/**
 * Findings at the boundary (docs/manifest.md): an agent using io_uring (its
 * operations pass no syscall tracepoint), a link or symlink to or over a
 * sensitive path, a chmod that adds setuid/setgid or makes a file it just
 * wrote executable, an exec of a file with no name (fileless), and what an
 * agent has no business doing to the host it runs on: loading a kernel module,
 * loading or attaching a BPF program, mounting, entering or creating
 * namespaces, and reaching a file outside its chroot. Attempts count as well
 * as successes (the result is on the finding): a refused attempt is evidence
 * of intent. Each is raised once per process (io_uring) or per event.
 */

export interface BoundaryFinding { name: EventName; attrs: Attributes }

const WRITTEN_MAX = 4096;
/** bpf(2) commands that put code into the kernel or hook it somewhere; maps and queries are not findings */
const BPF_CODE_CMDS = new Set(['BPF_PROG_LOAD', 'BPF_PROG_ATTACH', 'BPF_RAW_TRACEPOINT_OPEN', 'BPF_LINK_CREATE', 'BPF_LINK_UPDATE']);
const bpfCmdName = (cmd: number): string => BPF_CMDS[cmd] ?? String(cmd);
const outcome = (ret: number): string => (ret >= 0 ? 'succeeded' : `failed (${ret})`);
const SEEN_MAX = 10_000;

function under(path: string, prefix: string): boolean {
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path === p || path.startsWith(`${p}/`);
}

export class BoundaryFindings {
  private readonly sensitive: string[];
  /** paths each agent opened for writing, most recent last (bounded) */
  private readonly written = new Map<string, Set<string>>();
  private readonly ioUringSeen = new Set<number>();

  constructor(manifest: Manifest, homes?: string[]) {
    this.sensitive = expandHome(manifestSensitivePaths(manifest), homes);
  }

  private isSensitive(path: string): boolean {
    return path !== '' && this.sensitive.some((p) => under(path, p));
  }

  check(ev: SensorEvent, agent: string): BoundaryFinding | null {
    if ((ev.flags & L.WA_F_OUTSIDE_ROOT) !== 0) return chrootEscape(ev, agent);
    switch (ev.kind) {
      case 'file_write': {
        let set = this.written.get(agent);
        if (!set) this.written.set(agent, (set = new Set()));
        set.delete(ev.path);
        set.add(ev.path);
        if (set.size > WRITTEN_MAX) set.delete(set.values().next().value!);
        return null;
      }
      case 'io_uring':
        if (this.ioUringSeen.has(ev.pid)) return null;
        if (this.ioUringSeen.size > SEEN_MAX) this.ioUringSeen.clear();
        this.ioUringSeen.add(ev.pid);
        return { name: 'finding.io_uring', attrs: {
          'witness.io_uring.opcode': ev.opName,
          'witness.finding.reason': `agent '${agent}' submitted io_uring operations, which pass no syscall tracepoint (first: ${ev.opName})`,
        } };
      case 'link':
      case 'symlink': {
        // a symlink's target is text: compare it as given when absolute
        const target = ev.path;
        const hit = this.isSensitive(ev.path2) ? ev.path2 : target.startsWith('/') && this.isSensitive(target) ? target : null;
        if (hit === null) return null;
        return { name: 'finding.sensitive_link', attrs: {
          'file.path': ev.path2, 'witness.link.target': target, 'witness.result': ev.ret,
          'witness.finding.reason': `a ${ev.kind} ${hit === ev.path2 ? 'over' : 'to'} the sensitive path ${hit}`,
        } };
      }
      case 'chmod': {
        const mode = ev.args[0];
        const setid = (mode & 0o6000) !== 0;
        const execWritten = (mode & 0o111) !== 0 && this.written.get(agent)?.has(ev.path) === true;
        if (!setid && !execWritten) return null;
        return { name: 'finding.chmod', attrs: {
          'file.path': ev.path, 'witness.chmod.mode': (mode & 0o7777).toString(8).padStart(4, '0'), 'witness.result': ev.ret,
          'witness.finding.reason': setid
            ? `agent '${agent}' set ${(mode & 0o4000) !== 0 ? 'setuid' : 'setgid'} on ${ev.path}`
            : `agent '${agent}' made a file it wrote executable: ${ev.path}`,
        } };
      }
      case 'module':
        return { name: 'finding.kernel_module', attrs: {
          'file.path': ev.path, 'witness.syscall': ev.syscall, 'witness.result': ev.ret,
          'witness.finding.reason': `agent '${agent}' tried to load a kernel module (${ev.syscall}${ev.path !== '' ? ` ${ev.path}` : ''}): ${outcome(ev.ret)}`,
        } };
      case 'bpf': {
        const cmd = bpfCmdName(ev.args[0]);
        if (!BPF_CODE_CMDS.has(cmd)) return null;
        return { name: 'finding.bpf_program', attrs: {
          'witness.bpf.cmd': cmd, 'witness.result': ev.ret,
          'witness.finding.reason': `agent '${agent}' called bpf(${cmd}), putting code into or hooking the kernel: ${outcome(ev.ret)}`,
        } };
      }
      case 'mount':
        return { name: 'finding.mount', attrs: {
          'file.path': ev.path2 !== '' ? ev.path2 : ev.path, 'witness.syscall': ev.syscall, 'witness.result': ev.ret,
          'witness.finding.reason': `agent '${agent}' called ${ev.syscall}, which can hide or replace files the witness watches: ${outcome(ev.ret)}`,
        } };
      case 'namespace':
        return { name: 'finding.namespace', attrs: {
          'witness.syscall': ev.syscall, 'witness.result': ev.ret,
          'witness.finding.reason': `agent '${agent}' called ${ev.syscall} (flags 0x${(ev.args[0] >>> 0).toString(16)}): a new or other namespace changes what paths and addresses mean: ${outcome(ev.ret)}`,
        } };
      case 'exec':
        if ((ev.flags & L.WA_F_FILELESS) === 0) return null;
        return { name: 'finding.fileless_exec', attrs: {
          'process.executable.path': ev.exe !== '' ? ev.exe : ev.filename,
          'witness.finding.reason': 'an executable with no name in any directory ran (memfd, O_TMPFILE or deleted file)',
        } };
      default:
        return null;
    }
  }
}

/** A chrooted process reached a file outside its root (WA_F_OUTSIDE_ROOT): an fd or cwd kept across chroot. */
function chrootEscape(ev: SensorEvent, agent: string): BoundaryFinding {
  const path = 'path' in ev && typeof ev.path === 'string' ? ev.path : 'newPath' in ev ? ev.newPath : '';
  return { name: 'finding.chroot_escape', attrs: {
    'file.path': path,
    'witness.finding.reason': `agent '${agent}' is chrooted but reached ${path || 'a file'} outside its root (a descriptor or cwd kept from before the chroot)`,
  } };
}
