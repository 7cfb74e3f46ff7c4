import { describe, expect, it } from 'vitest';
import { FRAME_JSON, FRAME_OUTPUT, FrameReader, jsonFrame, outputFrame } from '../src/daemon/resident-protocol.js';
import { ResidentRouter, type RouteTarget, type RoutedBatch } from '../src/daemon/resident-router.js';
import { LAYOUT as L } from '../src/sensor/layout.js';

/** One addon-framed record: u32 len, u32 0, a wire header (+ fork child), zero padding to 8. */
function frame(type: number, pid: number, child = 0): Buffer {
  const len = type === L.WA_EV_FORK ? L['wa_fork.$size'] : L['wa_hdr.$size'];
  const b = Buffer.alloc(8 + ((len + 7) & ~7));
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 8 + L['wa_hdr.type']);
  b.writeUInt32LE(len, 8 + L['wa_hdr.size']);
  b.writeUInt32LE(pid, 8 + L['wa_hdr.pid']);
  if (type === L.WA_EV_FORK) b.writeUInt32LE(child, 8 + L['wa_fork.child_pid']);
  return b;
}

const batch = (...frames: Buffer[]): ArrayBuffer => {
  const b = Buffer.concat(frames);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};

/** (type, pid) of every record a target was handed, in order. */
function target(guardian: number): RouteTarget & { got: [number, number][]; barrier: number; dropped: Map<number, number> } {
  const t = {
    guardian, root: 0, got: [] as [number, number][], barrier: 0, dropped: new Map<number, number>(),
    onGuardianExit() { t.barrier++; },
    deliver(b: RoutedBatch) {
      for (const [type, n] of b.dropped ?? []) t.dropped.set(type, (t.dropped.get(type) ?? 0) + n);
      for (let off = 0; off < b.bytes.length;) {
        const len = b.bytes.readUInt32LE(off);
        t.got.push([b.bytes.readUInt16LE(off + 8), b.bytes.readUInt32LE(off + 8 + L['wa_hdr.pid'])]);
        off += 8 + ((len + 7) & ~7);
      }
    },
  };
  return t;
}

const { WA_EV_FORK: FORK, WA_EV_EXEC: EXEC, WA_EV_EXIT: EXIT, WA_EV_FILE_WRITE: WRITE } = L;

describe('resident router', () => {
  it('follows the tree from the guardian\'s child, in ring order, and nothing else', () => {
    const r = new ResidentRouter();
    const t = target(100);
    r.addGuardian(t);
    r.setRoot(t, 101);
    r.route(batch(
      frame(FORK, 100, 101), // the guardian forks the root
      frame(EXEC, 101),
      frame(WRITE, 999), // a stranger
      frame(FORK, 101, 102),
      frame(WRITE, 102),
      frame(FORK, 999, 998), // a stranger's child
      frame(WRITE, 998),
      frame(EXIT, 102),
      frame(EXIT, 101),
    ));
    expect(t.got).toEqual([[FORK, 100], [EXEC, 101], [FORK, 101], [WRITE, 102], [EXIT, 102], [EXIT, 101]]);
    expect(t.barrier).toBe(0);
  });

  it('holds the guardian\'s fork when it arrives before the root is named, and delivers it first', () => {
    const r = new ResidentRouter();
    const t = target(200);
    r.addGuardian(t);
    r.route(batch(frame(FORK, 200, 201)));
    expect(t.got).toEqual([]);
    r.setRoot(t, 201);
    r.route(batch(frame(EXEC, 201)));
    expect(t.got).toEqual([[FORK, 200], [EXEC, 201]]);
  });

  it('holds what the guardian\'s child writes before it is named (the guardian\'s setuid in it), in order, and only its', () => {
    const r = new ResidentRouter();
    const t = target(250);
    r.addGuardian(t);
    // a drain between the child's credential drop and the client's "root": none of it may be lost
    r.route(batch(frame(FORK, 250, 251), frame(WRITE, 251), frame(WRITE, 999), frame(EXEC, 251)));
    r.route(batch(frame(WRITE, 251)));
    expect(t.got).toEqual([]);
    r.setRoot(t, 251);
    expect(t.got).toEqual([[FORK, 250], [WRITE, 251], [EXEC, 251], [WRITE, 251]]);
    r.route(batch(frame(EXIT, 251)));
    expect(t.got.at(-1)).toEqual([EXIT, 251]);
    // a session that ends before naming its root leaves nothing held behind
    const u = target(260);
    r.addGuardian(u);
    r.route(batch(frame(FORK, 260, 261), frame(WRITE, 261)));
    r.remove(u);
    r.route(batch(frame(WRITE, 261)));
    expect(u.got).toEqual([]);
    expect(r.isMember(261)).toBe(false);
  });

  it('counts, per type, what the guardian\'s child writes past the hold bound before it is named', () => {
    const r = new ResidentRouter();
    const t = target(270);
    r.addGuardian(t);
    r.route(batch(frame(FORK, 270, 271), ...Array.from({ length: 300 }, () => frame(WRITE, 271)), frame(EXEC, 271)));
    r.setRoot(t, 271);
    // 256 held (the fork and 255 writes); the other 45 writes and the exec are counted, not lost silently
    expect(t.got).toHaveLength(256);
    expect(t.got.filter(([type]) => type === WRITE)).toHaveLength(255);
    expect(Object.fromEntries(t.dropped)).toEqual({ [WRITE]: 45, [EXEC]: 1 });
  });

  it('keeps records a process writes after its exit (connection accounting) and ends at the guardian\'s exit', () => {
    const r = new ResidentRouter();
    const t = target(300);
    r.addGuardian(t);
    r.setRoot(t, 301);
    r.route(batch(frame(EXIT, 301), frame(WRITE, 301), frame(EXIT, 300)));
    expect(t.got).toEqual([[EXIT, 301], [WRITE, 301]]);
    expect(t.barrier).toBe(1);
  });

  it('lets a reused pid go: a stranger\'s fork naming an exited member takes it out of the session', () => {
    const r = new ResidentRouter();
    const t = target(400);
    r.addGuardian(t);
    r.setRoot(t, 401);
    r.route(batch(frame(EXIT, 401), frame(FORK, 999, 401), frame(WRITE, 401)));
    expect(t.got).toEqual([[EXIT, 401]]);
    expect(r.isMember(401)).toBe(false);
  });

  it('never hands a session the daemon\'s TLS plaintext records (a run asks for those with --tls-metadata, standalone)', () => {
    const r = new ResidentRouter();
    const t = target(700);
    r.addGuardian(t);
    r.setRoot(t, 701);
    r.route(batch(frame(L.WA_EV_TLS_DATA, 701), frame(WRITE, 701)));
    expect(t.got).toEqual([[WRITE, 701]]);
  });

  it('keeps two sessions apart and forgets one on remove', () => {
    const r = new ResidentRouter();
    const a = target(500);
    const b = target(600);
    r.addGuardian(a); r.addGuardian(b);
    r.setRoot(a, 501); r.setRoot(b, 601);
    r.route(batch(frame(WRITE, 501), frame(WRITE, 601)));
    r.remove(a);
    r.route(batch(frame(WRITE, 501), frame(WRITE, 601)));
    expect(a.got).toEqual([[WRITE, 501]]);
    expect(b.got).toEqual([[WRITE, 601], [WRITE, 601]]);
  });
});

describe('resident frames', () => {
  it('reassembles frames split at any byte', () => {
    const lines = '{"event":"process.exec"}\n{"event":"process.exit","é":"ü"}\n';
    const wire = Buffer.concat([jsonFrame({ op: 'hello' }), outputFrame(lines), jsonFrame({ ok: true })]);
    for (let cut = 1; cut < wire.length; cut += 7) {
      const rd = new FrameReader();
      const out = [...rd.push(wire.subarray(0, cut)), ...rd.push(wire.subarray(cut))];
      expect(out.map((f) => f.kind)).toEqual([FRAME_JSON, FRAME_OUTPUT, FRAME_JSON]);
      expect(out[1]!.kind === FRAME_OUTPUT && out[1]!.bytes.toString('utf8')).toBe(lines);
    }
  });

  it('refuses an oversized JSON frame and an unknown kind', () => {
    const big = Buffer.alloc(5); big.writeUInt32LE(1 << 30, 0); big.writeUInt8(FRAME_JSON, 4);
    expect(() => new FrameReader().push(big)).toThrow(/bad frame/);
    const odd = Buffer.alloc(5); odd.writeUInt32LE(1, 0); odd.writeUInt8(9, 4);
    expect(() => new FrameReader().push(odd)).toThrow(/unknown frame kind/);
  });
});
