import { describe, expect, it } from 'vitest';
import { dnsTypeName, parseDnsMessage, parseDnsPayload, type DnsPayloadContext } from '../src/sensor/dns.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const UDP: DnsPayloadContext = { sockType: 2, protocol: 17, truncated: false };
const TCP: DnsPayloadContext = { sockType: 1, protocol: 6, truncated: false };
const RAW_UDP: DnsPayloadContext = { sockType: 3, protocol: 17, truncated: false };
const RAW_IP: DnsPayloadContext = { sockType: 3, protocol: 255, truncated: false };
const parse = (b: Uint8Array, ctx: DnsPayloadContext) => parseDnsPayload(b, 0, b.length, ctx);

// glibc res_mkquery for example.com: RD set, one question, no EDNS (no `options edns0`).
const GLIBC_A = hex('5c1e 0100 0001 0000 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001');
const GLIBC_AAAA = hex('5c1f 0100 0001 0000 0000 0000 07 6578616d706c65 03 636f6d 00 001c 0001');
// dig (BIND 9.18) example.com A: RD+AD, EDNS0 OPT (udp 1232) carrying an 8-byte client COOKIE.
const DIG_A = hex(`b2d4 0120 0001 0000 0000 0001 07 6578616d706c65 03 636f6d 00 0001 0001
  00 0029 04d0 00 00 0000 000c 000a 0008 0123456789abcdef`);
// Go's resolver (1.21+): RD, EDNS0 OPT with udp 1232 and no options; name with trailing root; HTTPS query.
const GO_HTTPS = hex('9a01 0100 0001 0000 0000 0001 03 617069 06 6f70656e6169 03 636f6d 00 0041 0001 00 0029 04d0 00 00 0000 0000');

const exampleA = { name: 'example.com', type: 'A', class: 'IN' };

describe('parseDnsPayload: framings', () => {
  it('parses glibc A and AAAA queries over UDP', () => {
    expect(parse(GLIBC_A, UDP)).toEqual({ ok: true, id: 0x5c1e, questions: [exampleA], truncated: false });
    expect(parse(GLIBC_AAAA, UDP)).toEqual({
      ok: true, id: 0x5c1f, questions: [{ name: 'example.com', type: 'AAAA', class: 'IN' }], truncated: false,
    });
  });

  it('skips the EDNS0 OPT record of dig and Go queries', () => {
    expect(parse(DIG_A, UDP)).toEqual({ ok: true, id: 0xb2d4, questions: [exampleA], truncated: false });
    expect(parse(GO_HTTPS, UDP)).toMatchObject({ ok: true, questions: [{ name: 'api.openai.com', type: 'HTTPS', class: 'IN' }] });
  });

  it('strips the 2-byte length prefix of a TCP write', () => {
    const prefixed = cat(hex((DIG_A.length).toString(16).padStart(4, '0')), DIG_A);
    expect(parse(prefixed, TCP)).toMatchObject({ ok: true, id: 0xb2d4, questions: [exampleA] });
    // socket type unknown (0): an exactly matching prefix still identifies TCP framing
    expect(parse(prefixed, { ...TCP, sockType: 0 })).toMatchObject({ ok: true, id: 0xb2d4 });
  });

  it('parses only the first of two pipelined TCP queries', () => {
    const one = cat(hex('001d'), GLIBC_A);
    expect(parse(cat(one, cat(hex('001d'), GLIBC_AAAA)), TCP)).toMatchObject({ ok: true, id: 0x5c1e, questions: [exampleA] });
  });

  it('handles a TCP resolver that writes the prefix and the message separately', () => {
    expect(parse(hex('001d'), TCP)).toMatchObject({ ok: false, error: expect.stringContaining('only the 2-byte length prefix') });
    expect(parse(GLIBC_A, TCP)).toMatchObject({ ok: true, id: 0x5c1e, questions: [exampleA] });
  });

  it('skips the UDP header of a raw IPPROTO_UDP socket', () => {
    const udp = hex(`c350 0035 ${(8 + GLIBC_A.length).toString(16).padStart(4, '0')} 0000`);
    expect(parse(cat(udp, GLIBC_A), RAW_UDP)).toMatchObject({ ok: true, id: 0x5c1e, questions: [exampleA] });
  });

  it('skips IPv4 (with options) and IPv6 headers of IP_HDRINCL raw sockets', () => {
    const udp = hex('4e21 0035 0025 0000'); // source port 20001: starts with nibble 4 like an IPv4 header
    const ipv4 = hex('46 00 0045 1234 0000 40 11 0000 0a000001 08080808 01010100'); // IHL 6: one 4-byte option
    expect(parse(cat(ipv4, udp, GLIBC_A), RAW_IP)).toMatchObject({ ok: true, questions: [exampleA] });
    expect(parse(cat(ipv4, udp, GLIBC_A), RAW_UDP)).toMatchObject({ ok: true, questions: [exampleA] });
    expect(parse(cat(udp, GLIBC_A), RAW_UDP)).toMatchObject({ ok: true, questions: [exampleA] });
    const ipv6 = cat(hex('60000000 0025 11 40'), new Uint8Array(32));
    expect(parse(cat(ipv6, udp, GLIBC_A), { ...RAW_UDP, protocol: 0 })).toMatchObject({ ok: true, questions: [exampleA] });
  });

  it('rejects raw datagrams that are not UDP to port 53', () => {
    expect(parse(cat(hex('c350 0050 0025 0000'), GLIBC_A), RAW_UDP)).toMatchObject({ ok: false, error: expect.stringContaining('port 53') });
    const tcpInIp = hex('45 00 0045 1234 0000 40 06 0000 0a000001 08080808');
    expect(parse(cat(tcpInIp, hex('4e21 0035 0025 0000'), GLIBC_A), RAW_IP).ok).toBe(false);
    expect(parse(new Uint8Array(0), RAW_IP).ok).toBe(false);
  });
});

describe('parseDnsMessage: names and hostile input', () => {
  const header = (qd: number) => hex(`0001 0100 ${qd.toString(16).padStart(4, '0')} 0000 0000 0000`);

  it('follows a backwards compression pointer in a later question', () => {
    const msg = cat(header(2), hex('07 6578616d706c65 03 636f6d 00 0001 0001'), hex('03 777777 c00c 001c 0001'));
    expect(parseDnsMessage(msg)).toMatchObject({
      ok: true, questions: [exampleA, { name: 'www.example.com', type: 'AAAA', class: 'IN' }],
    });
  });

  it.each([
    ['a pointer to itself', hex('c00c 0001 0001'), 'does not point backwards'],
    ['a forward pointer', hex('c020 0001 0001 00'), 'does not point backwards'],
    ['a pointer past the message', hex('cfff 0001 0001'), 'does not point backwards'],
    ['a two-pointer loop', hex('01 61 c00e 01 62 c00c'), 'does not point backwards'],
    ['an extended label type (0x40)', hex('40 6161 00 0001 0001'), 'not a label (> 63) or a pointer'],
    ['a label length of 0x80', hex('80 00 0001 0001'), 'not a label (> 63) or a pointer'],
  ])('rejects %s', (_what, body, reason) => {
    const r = parseDnsMessage(cat(header(1), body));
    expect(r).toMatchObject({ ok: false, error: expect.stringContaining(reason) });
  });

  it('rejects names longer than 255 bytes and accepts exactly 255', () => {
    const label = (n: number) => cat(new Uint8Array([n]), new Uint8Array(n).fill(0x61));
    const name = (...labels: number[]) => cat(...labels.map(label), hex('00 0001 0001'));
    // 4 labels of 63 = 256 wire bytes + root = 257
    expect(parseDnsMessage(cat(header(1), name(63, 63, 63, 63)))).toMatchObject({ ok: false, error: expect.stringContaining('255') });
    const ok = parseDnsMessage(cat(header(1), name(63, 63, 63, 61))); // 64*3 + 62 + 1 = 255
    expect(ok.ok && ok.questions[0]!.name.length).toBe(63 * 3 + 61 + 3);
  });

  it('escapes dots, backslashes, quotes and non-printable bytes in labels', () => {
    const msg = cat(header(1), hex('07 612e625c2209ff 02 2001 00 0001 0003'));
    expect(parseDnsMessage(msg)).toMatchObject({ ok: true, questions: [{ name: 'a\\.b\\\\\\"\\t\\255. \\001', class: 'CH' }] });
  });

  it('names the root, unknown types and unknown classes', () => {
    const msg = cat(header(1), hex('00 ff00 0009'));
    expect(parseDnsMessage(msg)).toMatchObject({ ok: true, questions: [{ name: '.', type: '65280', class: '9' }] });
    expect(dnsTypeName(28)).toBe('AAAA');
  });

  it('rejects a message shorter than the header', () => {
    expect(parseDnsMessage(hex('0001 0100 0001'))).toMatchObject({ ok: false, error: expect.stringContaining('12-byte header') });
  });

  it('keeps questions read before the capture was cut, and flags it', () => {
    const two = cat(header(2), hex('01 61 00 0001 0001'), hex('07 6578616d'));
    expect(parseDnsMessage(two, true)).toEqual({
      ok: true, id: 1, questions: [{ name: 'a', type: 'A', class: 'IN' }], truncated: true,
    });
    expect(parseDnsMessage(two, false)).toMatchObject({ ok: false, error: expect.stringContaining('question 2 of 2: name runs past') });
    const cutInType = cat(header(1), hex('01 61 00 00'));
    expect(parseDnsMessage(cutInType, false)).toMatchObject({ ok: false, error: expect.stringContaining('type and class') });
  });

  it('a huge qdcount ends at the end of the bytes', () => {
    expect(parseDnsMessage(cat(header(0xffff), hex('01 61 00 0001 0001')))).toMatchObject({ ok: false, error: expect.stringContaining('question 2 of 65535') });
  });

  it('never throws on random bytes', () => {
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 0x1000000;
    let ok = 0;
    for (let i = 0; i < 3000; i++) {
      const b = new Uint8Array(Math.floor(rand() * 80));
      for (let k = 0; k < b.length; k++) b[k] = rand() < 0.5 ? Math.floor(rand() * 4) : Math.floor(rand() * 256);
      if (b.length > 5) { b[4] = 0; b[5] = 1 + (i % 3); }
      for (const ctx of [UDP, TCP, RAW_IP]) if (parse(b, ctx).ok) ok++;
    }
    expect(ok).toBeGreaterThan(0);
  });
});
