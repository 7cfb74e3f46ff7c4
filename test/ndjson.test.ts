import { describe, expect, it } from 'vitest';
import { envelopeSchema, rfc3339Nanos, type Envelope } from '../src/events/envelope.js';
import { SENSOR_EVENT_NAMES } from '../src/events/names.js';
import { sensorAttributeSchemas, sensorEnvelopeSchema } from '../src/events/schemas.js';
import { decodeBatch } from '../src/sensor/decode.js';
import { bootEventTime, bootToEpochOffsetNs, eventTime, networkTransport, openFlagNames, toEnvelope } from '../src/sensor/ndjson.js';
import { SuppressionSummarizer } from '../src/sensor/suppression.js';
import type { SensorEvent } from '../src/sensor/types.js';
import { batchOf, execRecord, HEADER, record, sockaddr } from './helpers/wire.js';

const C = HEADER.constants as Record<string, number>;
// 2023-11-14T22:13:20Z as epoch ns, minus a boot time of 1000 s.
const clock = { bootToEpochNs: 1_700_000_000_000_000_000n - 1_000_000_000_000n };
const TS = 1_000_000_000_123n; // 1000 s after boot + 123 ns

function decodeAll(...records: Uint8Array[]): SensorEvent[] {
  const events: SensorEvent[] = [];
  decodeBatch(batchOf(...records), (e) => events.push(e), (e) => { throw e; });
  return events;
}

function envelopeOf(rec: Uint8Array): Envelope {
  const [ev] = decodeAll(rec);
  const env = toEnvelope(ev!, clock);
  if (env === null) throw new Error('no envelope');
  return env;
}

const query = new Uint8Array(Buffer.from('abcd01000001000000000000076578616d706c6503636f6d0000010001', 'hex'));
const answer = new Uint8Array(Buffer.from('abcd81800001000100000000076578616d706c6503636f6d0000010001c00c000100010000003c00045db8d822', 'hex'));
const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/** One crafted record per kind the mapper emits, with variants (flags, failures, unknown values). */
const RECORDS: Record<string, Uint8Array> = {
  exec: execRecord({ hdr: { ts_ns: TS, flags: C.WA_F_TRUNC_ARGV } }),
  execNoExe: execRecord({ exe: '', filename: './run.sh' }),
  exitNormal: record('wa_exit', {}, { ppid: 1, exit_code: 2 << 8 }),
  exitSignal: record('wa_exit', {}, { ppid: 1, exit_code: 6 | 0x80 }),
  connect4: record('wa_connect', {}, { ret: -115, sock_type: 1, protocol: 6, fd: 9, peer: sockaddr(2, 443, [1, 1, 1, 1]) }),
  connect6: record('wa_connect', {}, { ret: 0, sock_type: 2, protocol: 17, fd: 4, peer: sockaddr(10, 53, v6) }),
  connectUnix: record('wa_connect', {}, { ret: 0, sock_type: 1, protocol: 0, fd: 4, peer: sockaddr(1, 0, []) }),
  dns: record('wa_dns', {}, { sock_type: 2, protocol: 17, peer: sockaddr(2, 53, [8, 8, 8, 8]), payload_len: query.length, syscall: C.WA_SEND_SENDTO!, orig_len: query.length }, [query]),
  dnsBad: record('wa_dns', { flags: C.WA_F_TRUNC_PAYLOAD }, { sock_type: 2, protocol: 17, peer: sockaddr(2, 53, [8, 8, 8, 8]), payload_len: 3, syscall: 77, orig_len: 900 }, ['abc']),
  write: record('wa_file', {}, { ret: 3, open_flags: 0o1101, mode: 0o644, path_len: 8 }, ['/tmp/out']),
  read: record('wa_file', { type: C.WA_EV_FILE_READ_SENSITIVE, flags: C.WA_F_RELATIVE! | 0x800 }, { ret: 5, open_flags: 0o2000000, mode: 0, path_len: 8 }, ['.ssh/key']),
  unlink: record('wa_file', { type: C.WA_EV_FILE_UNLINK }, { ret: 0, path_len: 4 }, ['/a/b']),
  rename: record('wa_rename', {}, { ret: 0, rename_flags: 1, old_len: 2, new_len: 2 }, ['/a', '/b']),
  setuid: record('wa_setid', {}, { ret: 0, syscall: C.WA_SETID_SETUID!, old_ids: [1000, 1000, 1000], new_ids: [0, 0, 0] }),
  setgid: record('wa_setid', { type: C.WA_EV_SETGID }, { ret: -1, syscall: C.WA_SETID_SETRESGID!, old_ids: [5, 5, 5], new_ids: [5, 5, 5] }),
  ptrace: record('wa_ptrace', {}, { ret: 0, target_pid: 99, request: 16n }),
  ptraceOdd: record('wa_ptrace', {}, { ret: -1, target_pid: 99, request: -5n }),
  bind: record('wa_bind', {}, { ret: 0, sock_type: 3, protocol: 255, fd: 5, local: sockaddr(10, 0, []) }),
  // the boundary
  killGenerated: record('wa_kill', {}, { ret: 0, sig: 9, target_pid: 77, target_tid: 77, code: 0, syscall: 0, source: C.WA_KILL_GENERATED! }),
  killDenied: record('wa_kill', {}, { ret: -1, sig: 15, target_pid: -1, target_tid: 0, code: 0, syscall: C.WA_SYS_KILL!, source: C.WA_KILL_SYSCALL! }),
  ioUringOpen: record('wa_io_uring', {}, { fd: -100, op_flags: 0o100, opcode: 18, sq_thread: 0, path_len: 6, path2_len: 0 }, ['/x/key']),
  ioUringConnect: record('wa_io_uring', { flags: C.WA_F_USER_MEMORY }, { fd: 3, opcode: 16, peer: sockaddr(2, 80, [127, 0, 0, 1]) }),
  ioUringRename: record('wa_io_uring', {}, { fd: -100, opcode: 35, path_len: 2, path2_len: 2 }, ['/a', '/b']),
  link: record('wa_sysop', { type: C.WA_EV_LINK, flags: C.WA_F_USER_MEMORY }, { ret: 0, syscall: C.WA_SYS_LINKAT!, path_len: 2, path2_len: 2 }, ['/a', '/b']),
  symlink: record('wa_sysop', { type: C.WA_EV_SYMLINK, flags: C.WA_F_USER_MEMORY }, { ret: 0, syscall: C.WA_SYS_SYMLINK!, path_len: 1, path2_len: 2 }, ['a', '/b']),
  chmod: record('wa_sysop', { type: C.WA_EV_CHMOD }, { ret: 0, syscall: C.WA_SYS_FCHMOD!, path_len: 2, args: [0o4755, 0o104755, 3, 0] }, ['/a']),
  memfd: record('wa_sysop', { type: C.WA_EV_MEMFD, flags: C.WA_F_USER_MEMORY }, { ret: 4, syscall: C.WA_SYS_MEMFD_CREATE!, path_len: 1, args: [1, 0, 0, 0] }, ['x']),
  module: record('wa_sysop', { type: C.WA_EV_MODULE }, { ret: -1, syscall: C.WA_SYS_FINIT_MODULE!, path_len: 4, args: [0, 0, 3, 0] }, ['/m.o']),
  bpf: record('wa_sysop', { type: C.WA_EV_BPF }, { ret: 5, syscall: C.WA_SYS_BPF!, args: [5, 1, 0, 0] }),
  mount: record('wa_sysop', { type: C.WA_EV_MOUNT, flags: C.WA_F_USER_MEMORY }, { ret: -1, syscall: C.WA_SYS_MOUNT!, path_len: 5, path2_len: 4, args: [0, 0, 0, 0] }, ['tmpfs', '/mnt']),
  namespace: record('wa_sysop', { type: C.WA_EV_NAMESPACE }, { ret: 0, syscall: C.WA_SYS_UNSHARE!, args: [0x40020000, 0, 0, 0] }),
  scopeOverflow: record('wa_scope_overflow', {}, { child_pid: 4242, root_pid: 100, depth: 3, error: -7 }),
  // network depth (src/sensor/ndjson-net.ts)
  dnsAnswer: record('wa_dns_answer', { type: C.WA_EV_DNS_ANSWER }, { fd: 7, payload_len: answer.length, syscall: C.WA_RECV_RECVFROM!, orig_len: answer.length }, [answer]),
  dnsAnswerBad: record('wa_dns_answer', { type: C.WA_EV_DNS_ANSWER }, { fd: 7, payload_len: 3, syscall: 9, orig_len: 3 }, ['abc']),
  connEnd: record('wa_conn_end', { type: C.WA_EV_CONN_END, ts_ns: TS }, { fd: 9, how: C.WA_END_CLOSE!, peer: sockaddr(2, 443, [1, 1, 1, 1]), conn_id: TS - 2_000_000n, first_tx_ns: TS - 1_900_000n, last_tx_ns: TS - 1_500_000n, first_rx_ns: TS - 1_800_000n, last_rx_ns: TS - 100_000n, req_end_ns: TS - 1_500_000n, resp_start_ns: TS - 1_000_000n, tx_bytes: 600n, rx_bytes: 7000n, tx_calls: 3, rx_calls: 4 }),
  unixConnect: record('wa_unix_connect', { type: C.WA_EV_UNIX_CONNECT, flags: C.WA_F_USER_ADDR }, { ret: -2, fd: 3, sock_type: 1, path_len: 20 }, ['/var/run/docker.sock']),
  listen: record('wa_listen', { type: C.WA_EV_LISTEN }, { ret: 0, fd: 3, backlog: 511, sock_type: 1, protocol: 6, local: sockaddr(2, 8080, [127, 0, 0, 1]) }),
  accept: record('wa_listen', { type: C.WA_EV_ACCEPT }, { ret: 4, fd: 4, sock_type: 1, protocol: 6, local: sockaddr(2, 8080, [127, 0, 0, 1]), peer: sockaddr(2, 50000, [127, 0, 0, 2]) }),
};

/** sensor.suppressed comes from the kernel's repeat counters, not a record: one summary built from a counter row. */
function suppressedEnvelope(): Envelope {
  const [ev] = new SuppressionSummarizer({ budget: 1024, windowNs: 1e9 }).summarize([{
    pid: 7, type: C.WA_EV_FILE_WRITE!, hash: 0xabcdefn, count: 5, winStartNs: TS, firstNs: TS, lastNs: TS + 9n,
    keyFullLen: 8, key: Buffer.from('/tmp/out'), uid: 0, gid: 0, cgroupId: 1n, comm: 'flood', deleted: false,
  }], false);
  return toEnvelope(ev!, clock)!;
}

describe('toEnvelope', () => {
  it('produces envelopes that validate against the per-event schemas and the generic envelope', () => {
    const seen = new Set<string>();
    for (const [name, rec] of Object.entries(RECORDS)) {
      const env = envelopeOf(rec);
      const line = JSON.parse(JSON.stringify(env)) as unknown;
      const strict = sensorEnvelopeSchema.safeParse(line);
      expect(strict.success, `${name}: ${strict.success ? '' : JSON.stringify(strict.error.issues)}`).toBe(true);
      expect(envelopeSchema.safeParse(line).success).toBe(true);
      seen.add(env.event);
    }
    const sup = JSON.parse(JSON.stringify(suppressedEnvelope())) as unknown;
    const strictSup = sensorEnvelopeSchema.safeParse(sup);
    expect(strictSup.success, strictSup.success ? '' : JSON.stringify(strictSup.error.issues)).toBe(true);
    seen.add('sensor.suppressed');
    // every decoder-produced event name is covered (sensor.heartbeat is the control plane's)
    expect([...seen].sort()).toEqual(SENSOR_EVENT_NAMES.filter((n) => n !== 'sensor.heartbeat').sort());
    expect(Object.keys(sensorAttributeSchemas).sort()).toEqual([...seen].sort());
  });

  it('the strict schemas reject keys outside the contract and wrong value types', () => {
    const env = envelopeOf(RECORDS.connect4!);
    expect(sensorEnvelopeSchema.safeParse({ ...env, attributes: { ...env.attributes, 'witness.extra': 1 } }).success).toBe(false);
    expect(sensorEnvelopeSchema.safeParse({ ...env, attributes: { ...env.attributes, 'network.peer.port': '443' } }).success).toBe(false);
    expect(sensorEnvelopeSchema.safeParse({ ...env, event: 'process.exec' }).success).toBe(false);
  });

  it('maps exec with the common attributes, boot-time clock and flags', () => {
    const env = envelopeOf(RECORDS.exec!);
    expect(env).toEqual({
      time: '2023-11-14T22:13:20.000000123Z',
      event: 'process.exec',
      attributes: {
        'process.pid': 4242, 'thread.id': 4243, 'process.user.id': 1000, 'witness.gid': 1001,
        'process.command': 'agent', 'process.linux.cgroup': '4294967297',
        'process.parent_pid': 1, 'process.executable.path': '/usr/bin/ls', 'process.command_args': ['/bin/ls', '-la'],
        'witness.exec.filename': '/bin/ls', 'process.working_directory': '/home/agent',
        'witness.argc': 2, 'witness.euid': 1000, 'witness.egid': 1001, 'witness.flags': ['argv_truncated'],
      },
    });
    expect(envelopeOf(RECORDS.execNoExe!).attributes['process.executable.path']).toBe('./run.sh');
  });

  it('returns null for fork', () => {
    const [ev] = decodeAll(record('wa_fork', {}, { child_pid: 5 }));
    expect(toEnvelope(ev!, clock)).toBeNull();
  });

  it('maps exit status to code, signal and core flag', () => {
    expect(envelopeOf(RECORDS.exitNormal!).attributes).toMatchObject({ 'process.exit.code': 2, 'witness.exit.signal': null, 'witness.exit.core_dumped': false });
    expect(envelopeOf(RECORDS.exitSignal!).attributes).toMatchObject({ 'process.exit.code': null, 'witness.exit.signal': 6, 'witness.exit.core_dumped': true });
  });

  it('maps connect peers', () => {
    expect(envelopeOf(RECORDS.connect4!).attributes).toMatchObject({
      'network.transport': 'tcp', 'network.type': 'ipv4', 'network.peer.address': '1.1.1.1', 'network.peer.port': 443, 'witness.result': -115, 'witness.fd': 9,
    });
    expect(envelopeOf(RECORDS.connect6!).attributes).toMatchObject({ 'network.transport': 'udp', 'network.type': 'ipv6', 'network.peer.address': '2001:db8::1' });
    expect(envelopeOf(RECORDS.connectUnix!).attributes).toMatchObject({ 'network.type': null, 'network.peer.address': null });
  });

  it('maps dns queries, and still emits one whose payload does not parse', () => {
    expect(envelopeOf(RECORDS.dns!).attributes).toMatchObject({
      'dns.question.name': 'example.com', 'witness.dns.questions': ['example.com A'], 'witness.dns.type': 'A',
      'witness.dns.id': 0xabcd, 'witness.dns.syscall': 'sendto', 'network.peer.address': '8.8.8.8', 'network.transport': 'udp',
    });
    const bad = envelopeOf(RECORDS.dnsBad!);
    expect(bad.attributes).toMatchObject({
      'dns.question.name': null, 'witness.dns.questions': [], 'witness.dns.syscall': '77',
      'witness.dns.truncated': true, 'witness.flags': ['payload_truncated'],
    });
    expect(bad.attributes['witness.dns.parse_error']).toContain('12-byte header');
  });

  it('maps file events with open flags and octal mode', () => {
    expect(envelopeOf(RECORDS.write!).attributes).toMatchObject({
      'file.path': '/tmp/out', 'witness.result': 3, 'witness.open.flags': ['O_WRONLY', 'O_CREAT', 'O_TRUNC'], 'witness.open.mode': '0644',
    });
    const read = envelopeOf(RECORDS.read!);
    expect(read.event).toBe('file.read_sensitive');
    expect(read.attributes).toMatchObject({ 'witness.open.flags': ['O_RDONLY', 'O_CLOEXEC'], 'witness.flags': ['relative_path', 'bit_11'] });
    expect(envelopeOf(RECORDS.unlink!).attributes).not.toHaveProperty('witness.open.flags');
    expect(envelopeOf(RECORDS.rename!).attributes).toMatchObject({ 'file.path': '/b', 'witness.file.old_path': '/a', 'witness.rename.flags': ['RENAME_NOREPLACE'] });
  });

  it('maps setid, ptrace and bind', () => {
    expect(envelopeOf(RECORDS.setuid!).attributes).toMatchObject({ 'witness.syscall': 'setuid', 'witness.ids.old': ['1000', '1000', '1000'], 'witness.ids.new': ['0', '0', '0'] });
    expect(envelopeOf(RECORDS.setgid!)).toMatchObject({ event: 'security.setgid', attributes: { 'witness.syscall': 'setresgid', 'witness.result': -1 } });
    expect(envelopeOf(RECORDS.ptrace!).attributes).toMatchObject({ 'witness.ptrace.request': 'PTRACE_ATTACH', 'witness.ptrace.target_pid': 99 });
    expect(envelopeOf(RECORDS.ptraceOdd!).attributes['witness.ptrace.request']).toBe('-5');
    expect(envelopeOf(RECORDS.bind!).attributes).toMatchObject({ 'network.local.address': '::', 'network.transport': 'raw', 'network.type': 'ipv6' });
  });
});

describe('helpers', () => {
  it('eventTime (the cached formatter) agrees with rfc3339Nanos across seconds, days and years', () => {
    let seed = 99;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 0x1000000;
    const base = 1_700_000_000_999_999_999n;
    const samples = [0n, 1n, 999_999_999n, 1_000_000_000n, base, base + 1n, base + 2n, base - 1n, 4_102_444_800_000_000_000n];
    for (let i = 0; i < 2000; i++) samples.push(base + BigInt(Math.floor(rand() * 2 ** 52)) * BigInt(1 + (i % 3) * 1000));
    for (const ns of samples) expect(eventTime(ns)).toBe(rfc3339Nanos(ns));
  });

  it('bootEventTime (Number arithmetic within a second) agrees with rfc3339Nanos: in order, backwards, past 2^53 boot ns, two clocks', () => {
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 0x1000000;
    const a = { bootToEpochNs: 1_796_000_000_123_456_789n };
    const b = { bootToEpochNs: 1_796_000_100_000_000_001n };
    const cases: [bigint, { bootToEpochNs: bigint }][] = [];
    let t = 5_000_000_000n;
    for (let i = 0; i < 3000; i++) {
      t += BigInt(Math.floor(rand() * 3_000_000)); // runs inside a second, crossing seconds
      cases.push([t, i % 500 === 499 ? b : a]);
      if (i % 97 === 0) cases.push([t - 2_000_000_000n, a]); // an older event
    }
    const huge = 2n ** 53n - 5n; // past ~104 days of uptime Number loses nanoseconds: the BigInt path
    for (let i = 0n; i < 12n; i++) cases.push([huge + i * 3n, a]);
    cases.push([0n, a], [999_999_999n, b], [huge + 2n ** 40n, b]);
    for (const [boot, clock] of cases) expect(bootEventTime(boot, clock)).toBe(rfc3339Nanos(boot + clock.bootToEpochNs));
  });

  it('bootToEpochOffsetNs is realtime minus boottime', () => {
    expect(bootToEpochOffsetNs({ bootNs: 5_000n, realNs: 1_700_000_000_000_005_000n })).toBe(1_700_000_000_000_000_000n);
  });

  it.each([
    [1, 0, 'tcp'], [1, 6, 'tcp'], [1 | 0o4000, 6, 'tcp'], [1, 262, 'tcp'], [2, 0, 'udp'], [2, 17, 'udp'],
    [2, 1, 'unknown'], [3, 255, 'raw'], [0, 6, 'tcp'], [0, 17, 'udp'], [0, 0, 'unknown'], [5, 132, 'unknown'],
  ])('networkTransport(%i, %i) = %s', (type, proto, expected) => {
    expect(networkTransport(type, proto)).toBe(expected);
  });

  it('names open flags, keeping unknown bits as hex', () => {
    expect(openFlagNames(0)).toEqual(['O_RDONLY']);
    expect(openFlagNames(2 | 0o2000 | 0o4010000)).toEqual(['O_RDWR', 'O_APPEND', 'O_DSYNC', 'O_SYNC']);
    expect(openFlagNames(3 | 0x40000000)).toEqual(['0x3', '0x40000000']);
  });
});
