import { describe, expect, it } from 'vitest';
import { ContextCompactor } from '../src/events/compact.js';
import type { Envelope } from '../src/events/envelope.js';
import { compactLine, lineStats } from '../src/export/ndjson-line.js';
import { AttributionEnricher } from '../src/identity/enricher.js';
import { parseManifest } from '../src/manifest/load.js';
import { ScopeRegistry } from '../src/scope/registry.js';
import { decodeBatch } from '../src/sensor/decode.js';
import { enrichThrough, NetDepth } from '../src/sensor/netdepth.js';
import type { SensorEvent } from '../src/sensor/types.js';
import { batchOf, execRecord, HEADER, record, sockaddr, type HeaderFields } from './helpers/wire.js';

/**
 * The fast line writer (src/export/ndjson-line.ts) against the reference,
 * JSON.stringify(compactor.compact(env)), byte for byte: every kind the
 * decoder knows, built from wire records by the real producers (decode,
 * NetDepth, the enricher with and without a manifest and a scope), each sent
 * several times so that the compact form is the one written, with the
 * variants a template must either write right or refuse.
 */

const C = HEADER.constants as Record<string, number>;
// pids far above pid_max: /proc has none of them, identity comes from the records
const P = 0x3ff00001;
const clock = { bootToEpochNs: 1_700_000_000_000_000_000n };
let ts = 1_000_000_000_000n;
const h = (more: HeaderFields = {}): HeaderFields => ({ pid: P, tid: P, ts_ns: (ts += 1000n), cgroup_id: 77n, comm: 'agent', ...more });
const answer = new Uint8Array(Buffer.from('abcd81800001000100000000076578616d706c6503636f6d0000010001c00c000100010000003c00045db8d822', 'hex'));
const query = new Uint8Array(Buffer.from('abcd01000001000000000000076578616d706c6503636f6d0000010001', 'hex'));
const file = (path: string, more: HeaderFields = {}, flags = 0o101, type = C.WA_EV_FILE_WRITE!): Uint8Array =>
  record('wa_file', h({ type, ...more }), { ret: 3, open_flags: flags, mode: 0o640, path_len: Buffer.byteLength(path) }, [path]);

/** Wire records of every kind, the hot ones with the variants their templates see. */
function records(): Uint8Array[] {
  return [
    execRecord({ hdr: h(), exe: '/opt/coder/bin/coder', filename: '/opt/coder/bin/coder', argv: ['coder'] }),
    record('wa_fork', h(), { child_pid: P + 1 }),
    file('/dev/null'), file('/dev/null', {}, 0o1), file('/tmp/a', {}, 0o100101), file('/tmp/x', { tid: P + 7 }),
    file('/tmp/"quoted"\\back'), file('/tmp/new\nline\ttab'), file('/tmp/ünïcødé ✓'), file('/tmp/' + 'long/'.repeat(40)),
    file(Buffer.from([0x2f, 0xff, 0xfe, 0x41]).toString('latin1')), // invalid UTF-8 on the wire
    file('/tmp/flagged', { flags: C.WA_F_RELATIVE! }),
    file('/home/x/.ssh/id', {}, 0o0, C.WA_EV_FILE_READ_SENSITIVE!), file('/etc/shadow', {}, 0o2000000, C.WA_EV_FILE_READ_SENSITIVE!),
    record('wa_file', h({ type: C.WA_EV_FILE_UNLINK! }), { ret: 0, path_len: 4 }, ['/a/b']),
    record('wa_file', h({ type: C.WA_EV_FILE_UNLINK! }), { ret: -2, path_len: 6 }, ['/a/"b"']),
    record('wa_rename', h(), { ret: 0, rename_flags: 1, old_len: 2, new_len: 2 }, ['/a', '/b']),
    record('wa_rename', h(), { ret: 0, rename_flags: 9, old_len: 2, new_len: 3 }, ['/a', '/b\u0001']),
    record('wa_dns_answer', h({ type: C.WA_EV_DNS_ANSWER! }), { fd: 7, payload_len: answer.length, syscall: C.WA_RECV_RECVFROM!, orig_len: answer.length }, [answer]),
    record('wa_dns', h(), { sock_type: 2, protocol: 17, peer: sockaddr(2, 53, [8, 8, 8, 8]), payload_len: query.length, syscall: C.WA_SEND_SENDTO!, orig_len: query.length }, [query]),
    // 93.184.216.34 was resolved above: netdepth names it (server.address)
    record('wa_connect', h(), { ret: -115, sock_type: 1, protocol: 6, fd: 9, peer: sockaddr(2, 443, [93, 184, 216, 34]) }),
    record('wa_connect', h(), { ret: 0, sock_type: 1, protocol: 6, fd: 9, peer: sockaddr(2, 443, [1, 1, 1, 1]) }),
    record('wa_connect', h(), { ret: 0, sock_type: 2, protocol: 17, fd: 4, peer: sockaddr(10, 53, [0x20, 0x01, 0x0d, 0xb8]) }),
    record('wa_connect', h(), { ret: 0, sock_type: 1, protocol: 0, fd: 4, peer: sockaddr(1, 0, []) }),
    record('wa_setid', h(), { ret: 0, syscall: C.WA_SETID_SETUID!, old_ids: [1000, 1000, 1000], new_ids: [1000, 1000, 1000] }),
    record('wa_ptrace', h(), { ret: 0, target_pid: 99, request: 16n }),
    record('wa_bind', h(), { ret: 0, sock_type: 1, protocol: 6, fd: 5, local: sockaddr(2, 8080, [127, 0, 0, 1]) }),
    record('wa_kill', h(), { ret: 0, sig: 9, target_pid: 77, target_tid: 77, code: 0, syscall: 0, source: C.WA_KILL_GENERATED! }),
    record('wa_io_uring', h(), { fd: -100, op_flags: 0o100, opcode: 18, sq_thread: 0, path_len: 6, path2_len: 0 }, ['/x/key']),
    record('wa_sysop', h({ type: C.WA_EV_CHMOD! }), { ret: 0, syscall: C.WA_SYS_FCHMOD!, path_len: 2, args: [0o4755, 0o104755, 3, 0] }, ['/a']),
    record('wa_sysop', h({ type: C.WA_EV_CHMOD! }), { ret: 0, syscall: C.WA_SYS_FCHMOD!, path_len: 2, args: [0o644, 0o100644, 3, 0] }, ['/b']),
    record('wa_sysop', h({ type: C.WA_EV_CHMOD! }), { ret: -1, syscall: C.WA_SYS_FCHMOD!, path_len: 4, args: [0o7777, 0o107777, 3, 0] }, ['/"c"']),
    record('wa_sysop', h({ type: C.WA_EV_CHMOD!, flags: C.WA_F_USER_MEMORY! }), { ret: 0, syscall: C.WA_SYS_CHMOD!, path_len: 2, args: [0o755, 0, 0, 0] }, ['/d']),
    record('wa_sysop', h({ type: C.WA_EV_CHMOD!, flags: C.WA_F_USER_MEMORY! }), { ret: 0, syscall: C.WA_SYS_FCHMODAT2!, path_len: 2, args: [0o2711, 0, 0, 256] }, ['/e']),
    record('wa_scope_overflow', h(), { child_pid: 4242, root_pid: 100, depth: 3, error: -7 }),
    record('wa_unix_connect', h({ type: C.WA_EV_UNIX_CONNECT!, flags: C.WA_F_USER_ADDR! }), { ret: -2, fd: 3, sock_type: 1, path_len: 8 }, ['/tmp/s.k']),
    record('wa_listen', h({ type: C.WA_EV_LISTEN! }), { ret: 0, fd: 3, backlog: 511, sock_type: 1, protocol: 6, local: sockaddr(2, 8080, [127, 0, 0, 1]) }),
    // a context change mid-life (setuid): full again, then compact again
    file('/tmp/after-setuid', { uid: 0 }), file('/tmp/after-setuid', { uid: 0 }),
    record('wa_exit', h(), { ppid: 1, exit_code: 0 }),
  ];
}

const manifest = parseManifest(JSON.stringify({
  version: 1, agents: [{ name: 'coder', match: [{ executable: '/opt/coder/bin/coder' }], egress: { cidrs: ['192.0.2.0/24'] } }],
}), 'agents.json');

/** Every envelope the run path would serialise for `recs`, sent `times` times over. */
function envelopes(opts: { manifest: boolean; scope: boolean }, times = 3): Envelope[] {
  const registry = new ScopeRegistry({ isAlive: () => true, childrenOf: () => [], now: () => ts });
  const e = new AttributionEnricher({ clock, manifest: opts.manifest ? manifest : null, registry, homes: ['/root'] });
  if (opts.scope) registry.open({ runId: 'run-"1"', sessionId: 's1', toolCallId: 'tc-1', toolName: opts.manifest ? 'bash' : null, pid: P });
  const net = new NetDepth();
  const out: Envelope[] = [];
  const evs: SensorEvent[] = [];
  for (let i = 0; i < times; i++) decodeBatch(batchOf(...records()), (ev) => evs.push(ev), (err) => { throw err; });
  for (const ev of evs) for (const env of enrichThrough(net, ev, clock, (x, env) => e.enrich(x, env))) out.push(env);
  return out;
}

function compare(envs: Envelope[]): void {
  const fast = new ContextCompactor();
  const ref = new ContextCompactor();
  for (const env of envs) {
    const want = JSON.stringify(ref.compact(env));
    expect(compactLine(fast, env), env.event).toBe(want);
  }
  expect(fast.compacted).toBe(ref.compacted);
  expect(fast.full).toBe(ref.full);
}

describe('fast NDJSON lines', () => {
  for (const opts of [{ manifest: false, scope: false }, { manifest: true, scope: false }, { manifest: false, scope: true }, { manifest: true, scope: true }]) {
    it(`match JSON.stringify byte for byte over every kind (manifest ${opts.manifest}, scope ${opts.scope})`, () => {
      const envs = envelopes(opts);
      const kinds = new Set(envs.map((e) => e.event));
      for (const k of ['file.write', 'file.read_sensitive', 'file.unlink', 'file.rename', 'network.connect', 'security.chmod', 'process.exec', 'dns.query']) expect(kinds).toContain(k);
      const before = { ...lineStats };
      compare(envs);
      // the templates ran: a writer that always fell back would pass the comparison and prove nothing
      const fast = lineStats.fast - before.fast;
      const hot = envs.filter((e) => ['file.write', 'file.read_sensitive', 'file.unlink', 'file.rename', 'network.connect'].includes(e.event)).length;
      expect(fast).toBeGreaterThan(hot / 2);
      // the chmod template too (fchmod by fd, chmod by path): most compact chmod records written fast
      const chmods = envs.filter((e) => e.event === 'security.chmod');
      const beforeChmod = lineStats.fast;
      compare(chmods);
      expect(chmods.length).toBeGreaterThan(5);
      expect(lineStats.fast - beforeChmod).toBeGreaterThanOrEqual(Math.ceil((chmods.length * 2) / 3));
      if (opts.scope) expect(envs.some((e) => e.attributes['witness.scope.run_id'] === 'run-"1"')).toBe(true);
    });
  }

  it('reuse what they wrote for the previous record only while every value it came from is the same', () => {
    const [first] = envelopes({ manifest: false, scope: false }).filter((e) => e.event === 'file.write' && e.attributes['file.path'] === '/dev/null');
    const a = { ...first!.attributes, 'witness.open.flags': ['O_WRONLY'] };
    const fast = new ContextCompactor();
    const ref = new ContextCompactor();
    fast.classify(first!); // the context record of the key
    ref.classify(first!);
    let compacted = 0;
    const at = (t: number, change: (x: typeof a) => void = () => {}): void => {
      change(a);
      // the same attributes object, changed in place: nothing but the values tells the records apart
      for (const env of [{ time: `2026-12-02T10:00:00.00000000${t}Z`, event: 'file.write', attributes: a }, { time: `2026-12-02T10:00:01.00000000${t}Z`, event: 'file.write', attributes: { ...a } }] as Envelope[]) {
        expect(compactLine(fast, env)).toBe(JSON.stringify(ref.compact(env)));
      }
      compacted = fast.compacted;
    };
    at(1);
    at(2);
    at(3, (x) => { x['witness.result'] = 4; });
    at(4, (x) => { x['witness.open.flags'].push('O_APPEND'); }); // the same (unfrozen) list, longer
    at(5, (x) => { x['file.path'] = '/dev/zero'; });
    at(6, (x) => { x['thread.id'] = 12; });
    at(7, (x) => { x['witness.agent'] = 'coder'; });
    at(8, (x) => { x['witness.open.flags'] = Object.freeze(['O_RDWR']) as string[]; });
    at(9, (x) => { x['witness.open.mode'] = '0600'; });
    expect(compacted).toBe(18); // all of them compact: the templates (not the context) were under test
  });

  it('refuse what they do not know, and the reference writes it', () => {
    const base = envelopes({ manifest: false, scope: false }).filter((e) => e.event === 'file.write');
    const twisted: Envelope[] = [];
    const variants: ((a: Record<string, unknown>) => void)[] = [
      (a) => { a['witness.extra'] = 'x'; },
      (a) => { a['witness.result'] = '3'; },
      (a) => { a['witness.result'] = Number.NaN; },
      (a) => { a['witness.result'] = -0; },
      (a) => { a['file.path'] = null; },
      (a) => { a['witness.open.flags'] = ['O_WRONLY', 7]; },
      (a) => { a['witness.open.flags'] = 'O_WRONLY'; },
      (a) => { a['witness.open.mode'] = undefined; },
      (a) => { a['witness.agent.pending'] = true; },
      (a) => { a['witness.agent.pending'] = 1; },
      (a) => { a['witness.agent'] = '\ud800'; },
      (a) => { a['witness.process.key'] = `${String(a['witness.process.key'])}`; a['thread.id'] = 1.5; },
      (a) => { delete a['witness.agent']; },
    ];
    for (const v of variants) {
      for (const env of base) {
        const copy = { time: env.time, event: env.event, attributes: { ...env.attributes } };
        v(copy.attributes);
        twisted.push(copy as Envelope);
      }
    }
    compare(twisted);
  });
});
