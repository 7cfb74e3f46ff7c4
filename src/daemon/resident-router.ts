import { LAYOUT as L } from '../sensor/layout.js';
import { RECORD_KIND_NAMES } from '../sensor/types.js';

/**
 * Picks the records of each resident session's tree out of the daemon's raw
 * batches, before decoding, and hands them on as raw frames.
 *
 * A session's tree is what the kernel's traced set would hold for a
 * `witness run` of its own: its root (the guardian's one child, added to the
 * kernel's set before it runs an instruction) and everything that root's
 * descendants fork. The daemon traces host-wide, so every fork is on the wire
 * and the ring keeps reservation order: a child's fork record is always ahead
 * of the child's own records, and membership can be followed in order.
 *
 * Members stay members after their exit record until the session ends:
 * records the kernel writes after a process's exit (connection accounting at
 * exit_files) still belong to it. A fork record naming a pid of that exited
 * set as the child of a non-member is a reused pid: it leaves the session.
 */

const FRAME_HEADER = 8;
const TYPE = L['wa_hdr.type'];
const PID = L['wa_hdr.pid'];
const FORK_CHILD = L['wa_fork.child_pid'];
const EV_FORK = L.WA_EV_FORK;
const EV_EXIT = L.WA_EV_EXIT;
/** plaintext from the daemon's TLS uprobes (sensor.tlsMetadata): a run gets it only by asking for
 * --tls-metadata, and such a run loads its own sensor, so no session ever carries it */
const EV_TLS_DATA = L.WA_EV_TLS_DATA;
/** exited members a session remembers (late records) before the oldest are forgotten */
const EXITED_MAX = 65_536;
/**
 * Records of a guardian's child held before the client names it as the root: the guardian's
 * own code in the child (its setgid, setuid, seccomp) runs before the child is held, and a
 * drain can pass before the client's "root" arrives. A few; past this the child is no guardian's.
 */
const HELD_MAX = 256;

/** The guardian's child and its records, from its fork record until the root is named (past HELD_MAX: counted, per type). */
interface Held { child: number; frames: Buffer[]; types: number[]; dropped: Map<number, number> }

export function kindName(type: number): string {
  return RECORD_KIND_NAMES[type] ?? `type_${type}`;
}

export interface RoutedBatch {
  /** frames, back to back, as the addon frames them */
  bytes: Buffer;
  /** records per wire type */
  byType: Map<number, number>;
  /** records of the tree the router could not hold, per wire type (emitted, not delivered) */
  dropped?: Map<number, number>;
}

export interface RouteTarget {
  /** the guardian: its one fork is the root; its exit record is the stream's barrier */
  readonly guardian: number;
  root: number;
  /** set when the guardian's exit record passes: every record of the tree is ahead of it */
  onGuardianExit(): void;
  deliver(batch: RoutedBatch): void;
}

class Collector {
  readonly parts: Buffer[] = [];
  readonly byType = new Map<number, number>();
  add(frame: Buffer, type: number): void {
    this.parts.push(frame);
    this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
  }
}

export class ResidentRouter {
  private readonly live = new Map<number, RouteTarget>();
  private readonly exited = new Map<number, RouteTarget>();
  private readonly guardians = new Map<number, RouteTarget>();
  /** a guardian's forked child not yet named as root: pid → its session, and what it wrote */
  private readonly held = new Map<number, RouteTarget>();
  private readonly heldOf = new Map<RouteTarget, Held>();

  get sessions(): number {
    return this.guardians.size + new Set(this.live.values()).size;
  }

  /** Starts following a guardian (before it forks). */
  addGuardian(t: RouteTarget): void {
    this.guardians.set(t.guardian, t);
  }

  /** Names the root (the guardian's child, not yet running); what it wrote before, from its fork on, is delivered now. */
  setRoot(t: RouteTarget, pid: number): void {
    t.root = pid;
    this.live.set(pid, t);
    const h = this.heldOf.get(t);
    this.heldOf.delete(t);
    if (h) this.held.delete(h.child);
    if (!h || h.child !== pid) return;
    const byType = new Map<number, number>();
    for (const type of h.types) byType.set(type, (byType.get(type) ?? 0) + 1);
    t.deliver({ bytes: Buffer.concat(h.frames), byType, dropped: h.dropped });
  }

  /** The session a pid (live or exited) belongs to. */
  targetOf(pid: number): RouteTarget | undefined {
    return this.live.get(pid) ?? this.exited.get(pid);
  }

  /** A tree's pid, live or exited, is in some session. */
  isMember(pid: number): boolean {
    return this.live.has(pid) || this.exited.has(pid);
  }

  /** Forgets a session: its pids, its guardian. */
  remove(t: RouteTarget): void {
    if (this.guardians.get(t.guardian) === t) this.guardians.delete(t.guardian);
    const h = this.heldOf.get(t);
    this.heldOf.delete(t);
    if (h) this.held.delete(h.child);
    for (const m of [this.live, this.exited]) for (const [pid, s] of m) if (s === t) m.delete(pid);
  }

  /** One raw batch (the addon's framing). Cheap when no session is open. */
  route(ab: ArrayBuffer): void {
    if (this.guardians.size === 0 && this.live.size === 0 && this.exited.size === 0) return;
    const hold = (t: RouteTarget, child: number, off: number, framed: number, type: number): void => {
      let h = this.heldOf.get(t);
      if (!h) { this.heldOf.set(t, (h = { child, frames: [], types: [], dropped: new Map() })); this.held.set(child, t); }
      if (h.frames.length >= HELD_MAX) { h.dropped.set(type, (h.dropped.get(type) ?? 0) + 1); return; }
      h.frames.push(Buffer.from(buf.subarray(off, off + framed))); // a copy: the batch is gone by "root"
      h.types.push(type);
    };
    const buf = Buffer.from(ab);
    const out = new Map<RouteTarget, Collector>();
    const take = (t: RouteTarget, off: number, framed: number, type: number): void => {
      let c = out.get(t);
      if (!c) out.set(t, (c = new Collector()));
      c.add(buf.subarray(off, off + framed), type);
    };
    for (let off = 0; off + FRAME_HEADER <= buf.length;) {
      const len = buf.readUInt32LE(off);
      const framed = FRAME_HEADER + ((len + 7) & ~7);
      if (off + framed > buf.length || len < L['wa_hdr.$size']) break; // the decoder reports it; nothing here can be located
      const rec = off + FRAME_HEADER;
      const type = buf.readUInt16LE(rec + TYPE);
      const pid = buf.readUInt32LE(rec + PID);
      if (type === EV_FORK && len >= L['wa_fork.$size']) {
        const child = buf.readUInt32LE(rec + FORK_CHILD);
        const parent = this.live.get(pid);
        if (parent) {
          this.exited.delete(child);
          this.live.set(child, parent);
          take(parent, off, framed, type);
        } else {
          const reused = this.exited.get(child);
          if (reused) this.exited.delete(child);
          const g = this.guardians.get(pid);
          if (g && g.root === child) take(g, off, framed, type);
          else if (g && g.root === 0 && !this.heldOf.has(g)) hold(g, child, off, framed, type);
        }
      } else {
        const t = this.live.get(pid) ?? this.exited.get(pid);
        const early = t ? undefined : this.held.get(pid);
        if (early && type !== EV_TLS_DATA) {
          hold(early, pid, off, framed, type);
        } else if (t && type === EV_TLS_DATA) {
          // not this run's to see (docs/privacy.md): skipped before any count, as a standalone run never emits it
        } else if (t) {
          take(t, off, framed, type);
          if (type === EV_EXIT && this.live.get(pid) === t) this.retire(pid, t);
        } else if (type === EV_EXIT) {
          const g = this.guardians.get(pid);
          if (g) {
            this.guardians.delete(pid);
            // deliver what this batch holds for the tree first: it is all ahead of the barrier
            const c = out.get(g);
            if (c) { out.delete(g); g.deliver({ bytes: Buffer.concat(c.parts), byType: c.byType }); }
            g.onGuardianExit();
          }
        }
      }
      off += framed;
    }
    for (const [t, c] of out) t.deliver({ bytes: Buffer.concat(c.parts), byType: c.byType });
  }

  private retire(pid: number, t: RouteTarget): void {
    this.live.delete(pid);
    this.exited.set(pid, t);
    if (this.exited.size > EXITED_MAX) this.exited.delete(this.exited.keys().next().value!);
  }
}
