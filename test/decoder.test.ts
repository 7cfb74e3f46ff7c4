import { describe, expect, it } from 'vitest';
import { isWitnessError, type WitnessError } from '../src/errors.js';
import { decodeBatch, decodeTotals } from '../src/sensor/decode.js';
import { checkLayout, LAYOUT } from '../src/sensor/layout.js';
import type { SensorEvent } from '../src/sensor/types.js';
import { batch, batchOf, execRecord, frame, HEADER, layoutTable, parseEventsHeader, record, sockaddr } from './helpers/wire.js';

const C = HEADER.constants as Record<string, number>;
const WIRE_STRUCTS = ['wa_hdr', 'wa_exec', 'wa_exit', 'wa_fork', 'wa_sockaddr', 'wa_connect', 'wa_dns',
  'wa_file', 'wa_rename', 'wa_setid', 'wa_ptrace', 'wa_bind',
  'wa_stream_head', 'wa_dns_answer', 'wa_conn_end', 'wa_unix_connect', 'wa_listen', 'wa_tls_data', 'wa_scope_overflow',
  // the boundary
  'wa_kill', 'wa_io_uring', 'wa_sysop'];
/** Structs in events.h that never travel in a record. */
const NOT_ON_THE_WIRE = ['wa_traced'];

function decode(buf: ArrayBuffer): { events: SensorEvent[]; errors: WitnessError[]; result: { events: number; errors: number } } {
  const events: SensorEvent[] = [];
  const errors: WitnessError[] = [];
  const result = decodeBatch(buf, (e) => events.push(e), (e) => errors.push(e));
  return { events, errors, result };
}

function only<K extends SensorEvent['kind']>(buf: ArrayBuffer, kind: K): SensorEvent & { kind: K } {
  const { events, errors } = decode(buf);
  expect(errors.map((e) => e.message)).toEqual([]);
  expect(events).toHaveLength(1);
  expect(events[0]!.kind).toBe(kind);
  return events[0] as SensorEvent & { kind: K };
}

describe('layout table', () => {
  it('matches the offsets, sizes and constants computed from bpf/events.h', () => {
    expect(Object.keys(HEADER.structs).sort()).toEqual([...WIRE_STRUCTS, ...NOT_ON_THE_WIRE].sort());
    expect(LAYOUT).toEqual(layoutTable(HEADER, WIRE_STRUCTS));
  });

  it('the header parser applies natural alignment and tail padding (events.h itself has no holes)', () => {
    const h = parseEventsHeader(`
      #define N 3
      enum e { A = 1 << 4, B, C = N };
      struct in { __u16 x; __u8 y[N]; };   /* size 6, align 2 */
      struct t { __u8 a; __u64 b; __u16 c; struct in d; __s32 e; char f[N]; }; // ends at 31 → 32
    `);
    expect(h.constants).toEqual({ N: 3, A: 16, B: 17, C: 3 });
    expect(layoutTable(h, ['in', 't'])).toMatchObject({
      'in.x': 0, 'in.y': 2, 'in.$size': 6, 't.a': 0, 't.b': 8, 't.c': 16, 't.d': 18, 't.e': 24, 't.f': 28, 't.$size': 32,
    });
  });

  it('has the sizes events.h documents', () => {
    expect(LAYOUT['wa_hdr.$size']).toBe(56);
    expect(LAYOUT['wa_hdr.ts_ns']).toBe(8);
  });

  it('checkLayout accepts an identical table', () => {
    expect(() => checkLayout({ ...LAYOUT })).not.toThrow();
  });

  it('checkLayout lists every difference in both directions', () => {
    const native: Record<string, number> = { ...LAYOUT, 'wa_exec.argc': 64, 'wa_new.field': 8 };
    delete native.WA_DNS_MAX;
    let err: unknown;
    try { checkLayout(native); } catch (e) { err = e; }
    expect(isWitnessError(err, 'E_LAYOUT')).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toContain('wa_exec.argc: addon 64, decoder 60');
    expect(msg).toContain('WA_DNS_MAX: missing from the addon');
    expect(msg).toContain('wa_new.field: missing from the decoder');
    expect(msg).toContain('3 difference(s)');
  });
});

describe('decodeBatch: records', () => {
  it('decodes an exec record field by field', () => {
    const ev = only(batchOf(execRecord({
      hdr: { pid: 77, tid: 78, uid: 0, gid: 5, cgroup_id: 0xffff_ffff_ffff_fff1n, ts_ns: 2n ** 60n + 7n, comm: 'bash' },
      ppid: 76, argc: 3, euid: 0, egid: 5, filename: './x', argv: ['python3', '', 'a b'], cwd: '/tmp', exe: '/usr/bin/python3.11',
    })), 'exec');
    expect(ev).toEqual({
      kind: 'exec', pid: 77, tid: 78, uid: 0, gid: 5, cgroupId: 0xffff_ffff_ffff_fff1n, comm: 'bash',
      tsBootNs: 2n ** 60n + 7n, flags: 0, ppid: 76, argc: 3, euid: 0, egid: 5, filename: './x',
      argv: ['python3', '', 'a b'], cwd: '/tmp', exe: '/usr/bin/python3.11', root: null,
      argvTruncated: false, filenameTruncated: false, pathTruncated: false,
    });
  });

  it('decodes a chrooted exec: the root after the exe, root-relative cwd and exe', () => {
    const ev = only(batchOf(execRecord({ hdr: { flags: C.WA_F_CHROOT! }, cwd: '/', exe: '/usr/bin/dash', root: '/srv/jail' })), 'exec');
    expect(ev).toMatchObject({ cwd: '/', exe: '/usr/bin/dash', root: '/srv/jail', flags: C.WA_F_CHROOT });
  });

  it('keeps a cut last argv entry and reports the truncation flags', () => {
    const flags = C.WA_F_TRUNC_ARGV! | C.WA_F_TRUNC_FILENAME!;
    const argvBytes = new Uint8Array(Buffer.from('node\0--eval\0console.lo', 'utf8'));
    const ev = only(batchOf(execRecord({ hdr: { flags }, argc: 9, argvBytes })), 'exec');
    expect(ev.argv).toEqual(['node', '--eval', 'console.lo']);
    expect(ev.argc).toBe(9);
    expect([ev.argvTruncated, ev.filenameTruncated, ev.pathTruncated]).toEqual([true, true, false]);
  });

  it('never serves a stale comm or cgroup from the per-run caches', () => {
    // comm and cgroup are cached by their raw bytes: alternate them, change one
    // byte, fill all 16 comm bytes, and every record must still say its own
    const specs: [string, bigint][] = [
      ['bash', 1n], ['node', 1n], ['bash', 2n], ['basi', 2n], ['bash', 2n ** 40n + 1n],
      ['exactly15chars!', 2n ** 63n], ['', 0n], ['node', 1n], ['bash', 1n],
    ];
    const recs = specs.map(([c, cg], i) => record('wa_file', { comm: c, cgroup_id: cg, pid: 100 + i },
      { ret: 3, open_flags: 1, mode: 0, path_len: 2 }, ['/x']));
    const got: [string, bigint][] = [];
    decodeBatch(batchOf(...recs), (ev) => got.push([ev.comm, ev.cgroupId]));
    expect(got).toEqual(specs);
  });

  it('decodes UTF-8 (and replaces invalid bytes) in comm and paths; tolerates a trailing NUL', () => {
    const bad = new Uint8Array([0x2f, 0x74, 0xff, 0x00]); // "/t\xff\0"
    const rec = record('wa_file', { comm: 'café' }, { ret: 3, open_flags: 1, mode: 0o644, path_len: bad.length }, [bad]);
    const ev = only(batchOf(rec), 'file_write');
    expect(ev.comm).toBe('café');
    expect(ev.path).toBe('/t\uFFFD');
  });

  it('decodes exit status: normal, signalled, core dumped', () => {
    const exit = (status: number) => only(batchOf(record('wa_exit', {}, { ppid: 1, exit_code: status })), 'exit');
    expect(exit(3 << 8)).toMatchObject({ status: 0x300, exitCode: 3, signal: null, coreDumped: false });
    expect(exit(9)).toMatchObject({ exitCode: null, signal: 9, coreDumped: false });
    expect(exit(11 | 0x80)).toMatchObject({ exitCode: null, signal: 11, coreDumped: true });
  });

  it('decodes fork', () => {
    expect(only(batchOf(record('wa_fork', { pid: 10 }, { child_pid: 11 })), 'fork')).toMatchObject({ pid: 10, childPid: 11 });
  });

  const v6 = (...groups: number[]) => groups.flatMap((g) => [g >> 8, g & 0xff]);
  it.each([
    [2, [93, 184, 216, 34], '93.184.216.34'],
    [10, v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), '2001:db8::1'],
    [10, v6(0, 0, 0, 0, 0, 0, 0, 1), '::1'],
    [10, v6(0, 0, 0, 0, 0, 0, 0, 0), '::'],
    [10, v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304), '::ffff:1.2.3.4'],
    [10, v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), '2001:db8::1:0:0:1'],
    [10, v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), '2001:db8:0:1:1:1:1:1'],
    [10, v6(0x2001, 0, 0, 1, 0, 0, 0, 1), '2001:0:0:1::1'],
    [10, v6(0xfe80, 0, 0, 0, 0xabcd, 0xef, 0, 0), 'fe80::abcd:ef:0:0'],
    [10, v6(0x2001, 0xdb8, 1, 2, 3, 4, 5, 0), '2001:db8:1:2:3:4:5:0'],
    [1, [1, 2, 3, 4], null],
  ])('connect peer family %i %j → %s', (family, addr, text) => {
    const rec = record('wa_connect', {}, { ret: -115, sock_type: 1, protocol: 6, fd: 7, peer: sockaddr(family, 443, addr) });
    expect(only(batchOf(rec), 'connect')).toMatchObject({
      ret: -115, sockType: 1, protocol: 6, fd: 7, peerFamily: family, peerAddress: text, peerPort: 443,
    });
  });

  it('decodes bind', () => {
    const rec = record('wa_bind', {}, { ret: 0, sock_type: 2, protocol: 17, fd: 3, local: sockaddr(2, 5353, [0, 0, 0, 0]) });
    expect(only(batchOf(rec), 'bind')).toMatchObject({ localAddress: '0.0.0.0', localPort: 5353, sockType: 2, fd: 3 });
  });

  it('decodes dns and parses the payload', () => {
    const query = Buffer.from('abcd01000001000000000000076578616d706c6503636f6d0000010001', 'hex');
    const rec = record('wa_dns', {}, {
      sock_type: 2, protocol: 17, peer: sockaddr(2, 53, [127, 0, 0, 53]), payload_len: query.length,
      syscall: C.WA_SEND_SENDMMSG!, orig_len: query.length,
    }, [new Uint8Array(query)]);
    const ev = only(batchOf(rec), 'dns');
    expect(ev).toMatchObject({ peerAddress: '127.0.0.53', peerPort: 53, syscall: 'sendmmsg', payloadTruncated: false });
    expect(ev.dns).toEqual({ ok: true, id: 0xabcd, questions: [{ name: 'example.com', type: 'A', class: 'IN' }], truncated: false });
  });

  it('decodes unlink, read_sensitive and rename', () => {
    const unlink = record('wa_file', { type: C.WA_EV_FILE_UNLINK, flags: C.WA_F_RELATIVE }, { ret: -2, path_len: 5 }, ['x.txt']);
    const read = record('wa_file', { type: C.WA_EV_FILE_READ_SENSITIVE }, { ret: 4, open_flags: 0, path_len: 11 }, ['/etc/shadow']);
    const ren = record('wa_rename', { flags: C.WA_F_TRUNC_PATH }, { ret: 0, rename_flags: 1, old_len: 2, new_len: 3 }, ['/a', '/bc']);
    const { events } = decode(batchOf(unlink, read, ren));
    expect(events[0]).toMatchObject({ kind: 'file_unlink', ret: -2, path: 'x.txt', relativePath: true, pathTruncated: false });
    expect(events[1]).toMatchObject({ kind: 'file_read_sensitive', path: '/etc/shadow', ret: 4 });
    expect(events[2]).toMatchObject({ kind: 'file_rename', oldPath: '/a', newPath: '/bc', renameFlags: 1, pathTruncated: true });
  });

  it('decodes setuid / setgid and ptrace', () => {
    const su = record('wa_setid', {}, { ret: 0, syscall: C.WA_SETID_SETRESUID!, old_ids: [1000, 1000, 1000], new_ids: [0, 0, 0] });
    const sg = record('wa_setid', { type: C.WA_EV_SETGID }, { ret: -1, syscall: 99, old_ids: [5, 6, 7], new_ids: [5, 6, 7] });
    const pt = record('wa_ptrace', {}, { ret: 0, target_pid: 31337, request: 0x4206n });
    const { events } = decode(batchOf(su, sg, pt));
    expect(events[0]).toMatchObject({ kind: 'setuid', syscall: 'setresuid', oldIds: [1000, 1000, 1000], newIds: [0, 0, 0] });
    expect(events[1]).toMatchObject({ kind: 'setgid', syscall: '99', ret: -1 });
    expect(events[2]).toMatchObject({ kind: 'ptrace', targetPid: 31337, request: 0x4206n });
  });
});

describe('decodeBatch: framing and bad input', () => {
  const exit = () => record('wa_exit', {}, { ppid: 1, exit_code: 0 });

  it('pads frames to 8 bytes and accepts an unpadded last frame', () => {
    const a = execRecord({ argv: ['a'] }); // odd length
    expect(a.length % 8).not.toBe(0);
    const { events, errors } = decode(batch(frame(a), frame(execRecord({ argv: ['bb'] }), { pad: false })));
    expect(errors).toEqual([]);
    expect(events.map((e) => (e.kind === 'exec' ? e.argv[0] : ''))).toEqual(['a', 'bb']);
  });

  it('skips a garbage frame in the middle and keeps going', () => {
    const garbage = new Uint8Array(72).map((_, i) => (i * 37 + 11) & 0xff);
    const { events, errors, result } = decode(batch(frame(exit()), frame(garbage), frame(exit())));
    expect(events).toHaveLength(2);
    expect(result).toEqual({ events: 2, errors: 1 });
    expect(errors[0]!.code).toBe('E_WIRE');
    expect(errors[0]!.message).toMatch(/record at byte 80 \(type \d+/);
  });

  it('reports an unknown type with its offset and continues', () => {
    const { events, errors } = decode(batchOf(record('wa_exit', { type: 99 }, {}), exit()));
    expect(events).toHaveLength(1);
    expect(errors[0]!.message).toContain('record at byte 8 (type 99): unknown record type 99');
    expect(errors[0]!.field).toBe('wa_hdr.type');
  });

  it('stops when a frame length runs past the batch, keeping what came before', () => {
    const { events, errors } = decode(batch(frame(exit()), frame(exit(), { len: 4096 }), frame(exit())));
    expect(events).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toContain('frame length 4096 runs past the batch');
  });

  it('stops when the reserved word is not zero', () => {
    const { events, errors } = decode(batch(frame(exit(), { reserved: 1 }), frame(exit())));
    expect(events).toHaveLength(0);
    expect(errors[0]!.field).toBe('frame.reserved');
  });

  it('rejects a record shorter than its header or its struct', () => {
    const short = exit().slice(0, 60);
    new DataView(short.buffer).setUint32(4, 60, true); // consistent hdr.size, still short of wa_exit (64)
    const { events, errors } = decode(batch(frame(exit().slice(0, 20)), frame(short), frame(exit())));
    expect(events).toHaveLength(1);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringContaining('record of 20 bytes is shorter than struct wa_hdr (56)'),
      expect.stringContaining('record of 60 bytes is shorter than struct wa_exit (64)'),
    ]);
  });

  it('rejects hdr.size different from the frame length', () => {
    const { errors } = decode(batchOf(record('wa_exit', { size: 65 }, {})));
    expect(errors[0]!.message).toContain('hdr.size 65 differs from the frame length 64');
  });

  it('rejects variable lengths that run past the record', () => {
    const exec = execRecord({ lens: { argv_len: 4000 } });
    const dns = record('wa_dns', {}, { payload_len: 300 }, ['x']);
    const { events, errors } = decode(batchOf(exec, dns, exit()));
    expect(events).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/type 1 exec\): filename_len \+ argv_len \+ cwd_len \+ exe_len \+ root_len need \d+ bytes/);
    expect(errors[1]!.field).toBe('wa_dns');
  });

  it('rejects a variable length past its events.h bound even when the bytes are there', () => {
    const argvBytes = new Uint8Array(C.WA_ARGV_MAX! + 1).fill(0x61);
    const path = 'x'.repeat(C.WA_PATH_MAX! + 1);
    const file = record('wa_file', {}, { path_len: path.length }, [path]);
    const { events, errors } = decode(batchOf(execRecord({ argvBytes }), file, exit()));
    expect(events).toHaveLength(1);
    expect(errors.map((e) => e.field)).toEqual(['wa_exec.argv_len', 'wa_file.path_len']);
    expect(errors[0]!.message).toContain('4097 exceeds WA_ARGV_MAX (4096)');
  });

  it('ignores bytes after the variable parts', () => {
    const rec = record('wa_file', {}, { ret: 1, path_len: 4 }, ['/abc', new Uint8Array(12)]);
    expect(only(batchOf(rec), 'file_write').path).toBe('/abc');
  });

  it('decodes a Uint8Array view at a non-zero offset, with offsets relative to the view', () => {
    const inner = new Uint8Array(batchOf(exit(), record('wa_exit', { type: 77 }, {})));
    const outer = new Uint8Array(inner.length + 24);
    outer.set(inner, 24);
    const view = outer.subarray(24);
    const events: SensorEvent[] = [];
    const errors: WitnessError[] = [];
    expect(decodeBatch(view, (e) => events.push(e), (e) => errors.push(e))).toEqual({ events: 1, errors: 1 });
    expect(errors[0]!.message).toContain('record at byte 80 (type 77)');
  });

  it('survives a nested decodeBatch inside the out callback', () => {
    const inner = batchOf(record('wa_fork', {}, { child_pid: 1 }));
    const outer = batchOf(execRecord({ argv: ['first'] }), execRecord({ argv: ['second'] }));
    const seen: string[] = [];
    decodeBatch(outer, (e) => {
      if (e.kind === 'exec') {
        seen.push(e.argv[0]!);
        decodeBatch(inner, (f) => seen.push(f.kind));
      }
    });
    expect(seen).toEqual(['first', 'fork', 'second', 'fork']);
  });

  it('reports trailing bytes too short for a frame header', () => {
    const { events, errors } = decode(batch(frame(exit()), new Uint8Array(5)));
    expect(events).toHaveLength(1);
    expect(errors[0]!.field).toBe('frame.len');
  });

  it('counts errors without an errors callback and keeps process totals', () => {
    const before = { ...decodeTotals };
    const result = decodeBatch(batchOf(record('wa_exit', { type: 0 }, {}), exit()), () => {});
    expect(result).toEqual({ events: 1, errors: 1 });
    expect(decodeTotals.errors - before.errors).toBe(1);
    expect(decodeTotals.events - before.events).toBe(1);
    expect(decodeTotals.batches - before.batches).toBe(1);
  });

  it('never throws on random or mutated input', () => {
    let seed = 0x2545f491;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 0x1000000;
    const valid = new Uint8Array(batchOf(execRecord(), exit(), record('wa_dns', {}, { sock_type: 1, payload_len: 3 }, ['abc'])));
    let events = 0;
    let errors = 0;
    for (let i = 0; i < 2000; i++) {
      const buf = i % 2 === 0 ? valid.slice() : new Uint8Array(Math.floor(rand() * 300));
      for (let k = 0; k < 1 + rand() * 8; k++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      if (i % 2 !== 0 && buf.length >= 8) new DataView(buf.buffer).setUint32(4, 0, true);
      const r = decodeBatch(buf.buffer, () => events++, () => errors++);
      expect(r.events + r.errors).toBeGreaterThanOrEqual(0);
    }
    // both outcomes happen, so the loop exercised real decoding as well as rejections
    expect(events).toBeGreaterThan(0);
    expect(errors).toBeGreaterThan(0);
  });
});
