/**
 * Test-side model of the wire format, built from the text of bpf/events.h and
 * NOT from src/sensor/layout.ts: records crafted here and decoded by
 * src/sensor/decode.ts only agree if the decoder's table matches the header.
 *
 * `parseEventsHeader` understands exactly the C subset events.h uses:
 * #define NAME NUMBER, enums with `= N` / `= 1 << N` / implicit values, and
 * structs of __u8..__u64 / __s8..__s64 / char / nested `struct wa_*` fields,
 * optionally arrays, laid out with natural alignment (x86_64 / BPF ABI).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const EVENTS_H = fileURLToPath(new URL('../../bpf/events.h', import.meta.url));

export interface CField { name: string; ctype: string; offset: number; count: number; elemSize: number }
export interface CStruct { name: string; size: number; align: number; fields: CField[] }
export interface ParsedHeader { constants: Record<string, number>; structs: Record<string, CStruct> }

const SCALARS: Record<string, number> = {
  __u8: 1, __s8: 1, char: 1, __u16: 2, __s16: 2, __u32: 4, __s32: 4, __u64: 8, __s64: 8,
};

function evalConst(expr: string, known: Record<string, number>): number {
  const e = expr.trim();
  const shift = /^(\w+)\s*<<\s*(\w+)$/.exec(e);
  if (shift) return evalConst(shift[1]!, known) << evalConst(shift[2]!, known);
  if (/^(0x[0-9a-f]+|\d+)$/i.test(e)) return Number(e);
  const v = known[e];
  if (v === undefined) throw new Error(`events.h: cannot evaluate '${expr}'`);
  return v;
}

export function parseEventsHeader(text: string): ParsedHeader {
  const src = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
  const constants: Record<string, number> = {};
  for (const m of src.matchAll(/^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+(\S.*?)[ \t]*$/gm)) {
    constants[m[1]!] = evalConst(m[2]!, constants);
  }
  for (const m of src.matchAll(/enum\s+\w+\s*\{([^}]*)\}/g)) {
    let next = 0;
    for (const item of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [name, value] = item.split('=').map((s) => s.trim());
      next = value === undefined ? next : evalConst(value, constants);
      constants[name!] = next++;
    }
  }
  const structs: Record<string, CStruct> = {};
  for (const m of src.matchAll(/struct\s+(\w+)\s*\{([^}]*)\}\s*;/g)) {
    const fields: CField[] = [];
    let offset = 0;
    let align = 1;
    for (const decl of m[2]!.split(';').map((s) => s.trim()).filter(Boolean)) {
      const d = /^(struct\s+\w+|\w+)\s+(\w+)\s*(?:\[\s*(\w+)\s*\])?$/.exec(decl);
      if (!d) throw new Error(`events.h: cannot parse field '${decl}' of struct ${m[1]}`);
      const ctype = d[1]!.replace(/\s+/g, ' ');
      const count = d[3] === undefined ? 1 : evalConst(d[3], constants);
      let elemSize: number;
      let elemAlign: number;
      if (ctype.startsWith('struct ')) {
        const inner = structs[ctype.slice(7)];
        if (!inner) throw new Error(`events.h: ${ctype} used before its definition`);
        elemSize = inner.size;
        elemAlign = inner.align;
      } else {
        const sz = SCALARS[ctype];
        if (sz === undefined) throw new Error(`events.h: unknown type ${ctype}`);
        elemSize = sz;
        elemAlign = sz;
      }
      offset = Math.ceil(offset / elemAlign) * elemAlign;
      fields.push({ name: d[2]!, ctype, offset, count, elemSize });
      offset += elemSize * count;
      align = Math.max(align, elemAlign);
    }
    structs[m[1]!] = { name: m[1]!, size: Math.ceil(offset / align) * align, align, fields };
  }
  return { constants, structs };
}

/** The header as a layout table in the addon's key scheme (see src/sensor/layout.ts). */
export function layoutTable(h: ParsedHeader, structNames: string[]): Record<string, number> {
  const table: Record<string, number> = { ...h.constants };
  for (const name of structNames) {
    const s = h.structs[name];
    if (!s) throw new Error(`events.h has no struct ${name}`);
    for (const f of s.fields) table[`${name}.${f.name}`] = f.offset;
    table[`${name}.$size`] = s.size;
  }
  return table;
}

export const HEADER = parseEventsHeader(readFileSync(EVENTS_H, 'utf8'));
const C = HEADER.constants;

function struct(name: string): CStruct {
  const s = HEADER.structs[name];
  if (!s) throw new Error(`events.h has no struct ${name}`);
  return s;
}

function field(s: CStruct, name: string): CField {
  const f = s.fields.find((x) => x.name === name);
  if (!f) throw new Error(`struct ${s.name} has no field ${name}`);
  return f;
}

export interface Sockaddr { family: number; port: number; addr: number[] }
export type FieldValue = number | bigint | string | number[] | Sockaddr;

function writeScalar(dv: DataView, at: number, ctype: string, v: number | bigint): void {
  switch (ctype) {
    case '__u8': case '__s8': case 'char': dv.setUint8(at, Number(v) & 0xff); break;
    case '__u16': case '__s16': dv.setUint16(at, Number(v) & 0xffff, true); break;
    case '__u32': dv.setUint32(at, Number(v) >>> 0, true); break;
    case '__s32': dv.setInt32(at, Number(v), true); break;
    case '__u64': dv.setBigUint64(at, BigInt(v), true); break;
    case '__s64': dv.setBigInt64(at, BigInt(v), true); break;
    default: throw new Error(`no writer for ${ctype}`);
  }
}

function writeField(dv: DataView, base: number, s: CStruct, name: string, v: FieldValue): void {
  const f = field(s, name);
  const at = base + f.offset;
  if (f.ctype.startsWith('struct ')) {
    const inner = struct(f.ctype.slice(7));
    for (const [k, x] of Object.entries(v as unknown as Record<string, FieldValue>)) writeField(dv, at, inner, k, x);
  } else if (typeof v === 'string') {
    const bytes = Buffer.from(v, 'utf8');
    for (let i = 0; i < Math.min(bytes.length, f.count); i++) dv.setUint8(at + i, bytes[i]!);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => writeScalar(dv, at + i * f.elemSize, f.ctype, x));
  } else {
    writeScalar(dv, at, f.ctype, v as number | bigint);
  }
}

export interface HeaderFields {
  type?: number; flags?: number; size?: number; ts_ns?: bigint; pid?: number; tid?: number;
  uid?: number; gid?: number; cgroup_id?: bigint; comm?: string;
}

const TYPE_OF: Record<string, number> = {
  wa_exec: C.WA_EV_EXEC!, wa_exit: C.WA_EV_EXIT!, wa_fork: C.WA_EV_FORK!, wa_connect: C.WA_EV_CONNECT!,
  wa_dns: C.WA_EV_DNS!, wa_file: C.WA_EV_FILE_WRITE!, wa_rename: C.WA_EV_FILE_RENAME!, wa_setid: C.WA_EV_SETUID!,
  wa_ptrace: C.WA_EV_PTRACE!, wa_bind: C.WA_EV_BIND!, wa_scope_overflow: C.WA_EV_SCOPE_OVERFLOW!,
  wa_kill: C.WA_EV_KILL!, wa_io_uring: C.WA_EV_IO_URING!, wa_sysop: C.WA_EV_CHMOD!,
};

export const DEFAULT_HDR: Required<HeaderFields> = {
  type: 0, flags: 0, size: 0, ts_ns: 123_456_789_012n, pid: 4242, tid: 4243, uid: 1000, gid: 1001,
  cgroup_id: 0x1_0000_0001n, comm: 'agent',
};

/**
 * One record: struct `name` with `fields`, then `tail` (variable parts) in
 * order. hdr.type defaults from the struct, hdr.size to the real length.
 */
export function record(
  name: string, hdr: HeaderFields, fields: Record<string, FieldValue>, tail: (Uint8Array | string)[] = [],
): Uint8Array {
  const s = struct(name);
  const parts = tail.map((t) => (typeof t === 'string' ? new Uint8Array(Buffer.from(t, 'utf8')) : t));
  const total = s.size + parts.reduce((n, p) => n + p.length, 0);
  const bytes = new Uint8Array(total);
  const dv = new DataView(bytes.buffer);
  const h = { ...DEFAULT_HDR, type: TYPE_OF[name] ?? 0, size: total, ...hdr };
  const hs = struct('wa_hdr');
  for (const [k, v] of Object.entries(h)) writeField(dv, 0, hs, k, v);
  for (const [k, v] of Object.entries(fields)) writeField(dv, 0, s, k, v);
  let at = s.size;
  for (const p of parts) { bytes.set(p, at); at += p.length; }
  return bytes;
}

export interface ExecSpec {
  hdr?: HeaderFields; ppid?: number; argc?: number; euid?: number; egid?: number;
  filename?: string; argv?: string[]; argvBytes?: Uint8Array; cwd?: string; exe?: string; root?: string;
  lens?: Partial<Record<'filename_len' | 'argv_len' | 'cwd_len' | 'exe_len' | 'root_len', number>>;
}

/** An exec record; argv is NUL-terminated per entry the way the kernel lays out arg_start..arg_end. */
export function execRecord(spec: ExecSpec = {}): Uint8Array {
  const argv = spec.argv ?? ['/bin/ls', '-la'];
  const argvBytes = spec.argvBytes ?? new Uint8Array(Buffer.from(argv.map((a) => `${a}\0`).join(''), 'utf8'));
  const filename = Buffer.from(spec.filename ?? '/bin/ls');
  const cwd = Buffer.from(spec.cwd ?? '/home/agent');
  const exe = Buffer.from(spec.exe ?? '/usr/bin/ls');
  const root = Buffer.from(spec.root ?? '');
  return record('wa_exec', spec.hdr ?? {}, {
    ppid: spec.ppid ?? 1, argc: spec.argc ?? argv.length, euid: spec.euid ?? 1000, egid: spec.egid ?? 1001,
    filename_len: filename.length, argv_len: argvBytes.length, cwd_len: cwd.length, exe_len: exe.length,
    root_len: root.length,
    ...spec.lens,
  }, [filename, argvBytes, cwd, exe, root]);
}

/** A sockaddr block; `addr` is the 16 raw bytes (v4 in the first 4). */
export function sockaddr(family: number, port: number, addr: number[]): Sockaddr {
  return { family, port, addr: [...addr, ...new Array<number>(16 - addr.length).fill(0)] };
}

export interface FrameOptions { len?: number; reserved?: number; pad?: boolean }

/** One frame: u32 len, u32 reserved, the record, zero padding to 8 bytes. */
export function frame(rec: Uint8Array, opts: FrameOptions = {}): Uint8Array {
  const padded = opts.pad === false ? rec.length : Math.ceil(rec.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, opts.len ?? rec.length, true);
  dv.setUint32(4, opts.reserved ?? 0, true);
  out.set(rec, 8);
  return out;
}

/** A batch as the addon hands it over: records framed (or pre-built frames) back to back. */
export function batch(...parts: Uint8Array[]): ArrayBuffer {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out.buffer;
}

/** Frames every record and concatenates them. */
export function batchOf(...records: Uint8Array[]): ArrayBuffer {
  return batch(...records.map((r) => frame(r)));
}
