import { describe, expect, it } from 'vitest';
import type { WitnessError } from '../src/errors.js';
import { decodeBatch } from '../src/sensor/decode.js';
import type { SensorEvent } from '../src/sensor/types.js';
import { batchOf, HEADER, record } from './helpers/wire.js';

const C = HEADER.constants as Record<string, number>;

function decode(rec: Uint8Array): { events: SensorEvent[]; errors: string[] } {
  const events: SensorEvent[] = [];
  const errors: string[] = [];
  decodeBatch(batchOf(rec), (e) => events.push(e), (e: WitnessError) => errors.push(e.field ?? ''));
  return { events, errors };
}

describe('network-depth records on the wire', () => {
  it('decodes a stream head into a copy of its bytes, with the capture-end flag', () => {
    const rec = record('wa_stream_head', { type: C.WA_EV_STREAM_HEAD, flags: C.WA_F_CAPTURE_END }, { fd: 5, len: 3, syscall: C.WA_SEND_WRITEV!, stream_off: 40, orig_len: 100, conn_id: 77n }, [new Uint8Array([0x16, 3, 1])]);
    const { events } = decode(rec);
    expect(events[0]).toMatchObject({ kind: 'stream_head', fd: 5, syscall: 'writev', streamOff: 40, origLen: 100, connId: 77n, captureEnd: true });
    expect([...(events[0] as { bytes: Uint8Array }).bytes]).toEqual([0x16, 3, 1]);
    rec.fill(0, rec.length - 3); // the event holds a copy, not a view of the batch
    expect([...(events[0] as { bytes: Uint8Array }).bytes]).toEqual([0x16, 3, 1]);
  });

  it('decodes unix connects: filesystem path, abstract name, user-memory flag', () => {
    const fs = decode(record('wa_unix_connect', { type: C.WA_EV_UNIX_CONNECT }, { ret: 0, fd: 3, sock_type: 1, path_len: 9 }, ['/run/x.sk']));
    expect(fs.events[0]).toMatchObject({ kind: 'unix_connect', path: '/run/x.sk', abstract: false, userAddress: false });
    const ab = decode(record('wa_unix_connect', { type: C.WA_EV_UNIX_CONNECT, flags: C.WA_F_USER_ADDR }, { ret: -111, fd: 3, sock_type: 1, path_len: 5 }, [new Uint8Array([0, 0x61, 0x0a, 0x62, 0x5c])]));
    expect(ab.events[0]).toMatchObject({ path: '@a\\010b\\092', abstract: true, userAddress: true, ret: -111 });
  });

  it('refuses records shorter than their struct or with lengths past their bound or the record', () => {
    expect(decode(record('wa_hdr', { type: C.WA_EV_CONN_END }, {})).errors).toEqual(['wa_conn_end.$size']);
    expect(decode(record('wa_stream_head', { type: C.WA_EV_STREAM_HEAD }, { len: 4000 })).errors).toEqual(['wa_stream_head.len']);
    expect(decode(record('wa_stream_head', { type: C.WA_EV_STREAM_HEAD }, { len: 10 }, ['abc'])).errors).toEqual(['wa_stream_head']);
    expect(decode(record('wa_dns_answer', { type: C.WA_EV_DNS_ANSWER }, { payload_len: 2000 })).errors).toEqual(['wa_dns_answer.payload_len']);
    expect(decode(record('wa_unix_connect', { type: C.WA_EV_UNIX_CONNECT }, { path_len: 109 })).errors).toEqual(['wa_unix_connect.path_len']);
    expect(decode(record('wa_hdr', { type: C.WA_EV_LISTEN }, {})).errors).toEqual(['wa_listen.$size']);
  });
});
