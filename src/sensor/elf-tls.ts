import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What TLS library an ELF file carries, as far as its symbols and sections
 * tell, for `--tls-metadata`'s probe table: OpenSSL with exported
 * SSL_write/SSL_read (uprobe-able), or one of the stacks the uprobes cannot
 * see into (Go's crypto/tls, rustls, BoringSSL without symbols as in Bun).
 * Reads the section headers and the dynamic/static symbol tables; the
 * library markers of stripped files are byte strings, a heuristic (said so
 * in the reason). Never throws: an unreadable file is `unreadable`.
 */

export type TlsLibrary = 'openssl' | 'imports_openssl' | 'gnutls' | 'go' | 'rustls' | 'boringssl' | 'none' | 'not_elf' | 'unreadable';

export interface ElfTls {
  library: TlsLibrary;
  /** SSL_write / SSL_read / SSL_write_ex / SSL_read_ex found as defined symbols */
  sslSymbols: string[];
  reason: string;
}

export const SSL_FUNCS = ['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex'];
const MARKER_SCAN_MAX = 512 << 20;

interface Section { name: string; type: number; offset: number; size: number; link: number; entsize: number }

function read(fd: number, off: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, off);
  return b.subarray(0, n);
}

function sections(fd: number): Section[] | null {
  const h = read(fd, 0, 64);
  if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return null; // ELF64 little-endian only
  const shoff = Number(h.readBigUInt64LE(0x28));
  const shentsize = h.readUInt16LE(0x3a);
  const shnum = h.readUInt16LE(0x3c);
  const shstrndx = h.readUInt16LE(0x3e);
  if (shentsize < 64 || shnum === 0 || shnum > 4096) return [];
  const t = read(fd, shoff, shentsize * shnum);
  if (t.length < shentsize * shnum) return [];
  const raw = [...Array(shnum).keys()].map((i) => {
    const o = i * shentsize;
    return {
      nameOff: t.readUInt32LE(o), type: t.readUInt32LE(o + 4), offset: Number(t.readBigUInt64LE(o + 0x18)),
      size: Number(t.readBigUInt64LE(o + 0x20)), link: t.readUInt32LE(o + 0x28), entsize: Number(t.readBigUInt64LE(o + 0x38)),
    };
  });
  const strtab = raw[shstrndx];
  const names = strtab ? read(fd, strtab.offset, Math.min(strtab.size, 1 << 20)) : Buffer.alloc(0);
  return raw.map((s) => {
    const end = names.indexOf(0, s.nameOff);
    return { name: names.toString('latin1', s.nameOff, end < 0 ? names.length : end), type: s.type, offset: s.offset, size: s.size, link: s.link, entsize: s.entsize };
  });
}

/** Defined function symbols among `wanted` in a symbol table section (SHT_SYMTAB 2 / SHT_DYNSYM 11). */
function definedSymbols(fd: number, secs: Section[], symtab: Section, wanted: Set<string>, undefinedToo = false): string[] {
  const strs = secs[symtab.link];
  if (!strs || symtab.entsize < 24 || symtab.size > 256 << 20) return [];
  const syms = read(fd, symtab.offset, symtab.size);
  const str = read(fd, strs.offset, Math.min(strs.size, 256 << 20));
  const found: string[] = [];
  for (let o = 0; o + 24 <= syms.length; o += symtab.entsize) {
    const shndx = syms.readUInt16LE(o + 6);
    if ((shndx === 0) !== undefinedToo) continue; // undefined: imported, not implemented here
    const nameOff = syms.readUInt32LE(o);
    const end = str.indexOf(0, nameOff);
    const name = str.toString('latin1', nameOff, end < 0 ? str.length : end);
    if (wanted.has(name) && !found.includes(name)) found.push(name);
  }
  return found;
}

/** DT_NEEDED names of the file's dynamic section. */
function needed(fd: number, secs: Section[]): string[] {
  const dyn = secs.find((s) => s.type === 6);
  const strs = dyn ? secs[dyn.link] : undefined;
  if (!dyn || !strs || dyn.size > 1 << 20) return [];
  const d = read(fd, dyn.offset, dyn.size);
  const str = read(fd, strs.offset, Math.min(strs.size, 1 << 20));
  const out: string[] = [];
  for (let o = 0; o + 16 <= d.length; o += 16) {
    const tag = Number(d.readBigInt64LE(o));
    if (tag === 0) break;
    if (tag !== 1) continue;
    const off = Number(d.readBigUInt64LE(o + 8));
    const end = str.indexOf(0, off);
    out.push(str.toString('latin1', off, end < 0 ? str.length : end));
  }
  return out;
}

const LIB_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/usr/lib', '/lib', '/usr/local/lib', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu'];

/** A TLS library among the libraries this file links (two levels: libcurl links libssl). */
function linkedTls(fd: number, secs: Section[], depth = 0): { lib: TlsLibrary; via: string } | null {
  for (const n of needed(fd, secs)) {
    if (/^libssl\.so/.test(n)) return { lib: 'imports_openssl', via: n };
    if (/^libgnutls\.so/.test(n)) return { lib: 'gnutls', via: n };
  }
  if (depth > 0) return null;
  for (const n of needed(fd, secs)) {
    if (/^(libc|libm|libdl|libpthread|ld-linux|libgcc_s|libstdc\+\+)\b/.test(n)) continue;
    const p = LIB_DIRS.map((d) => join(d, n)).find((x) => existsSync(x));
    if (!p) continue;
    let f2: number;
    try { f2 = openSync(p, 'r'); } catch { continue; }
    try {
      const s2 = sections(f2);
      const r = s2 ? linkedTls(f2, s2, depth + 1) : null;
      if (r) return { lib: r.lib, via: `${n} → ${r.via}` };
    } finally {
      closeSync(f2);
    }
  }
  return null;
}

function hasMarker(fd: number, size: number, markers: string[]): string | null {
  const needles = markers.map((m) => Buffer.from(m, 'latin1'));
  const chunk = 4 << 20;
  const keep = 64;
  for (let off = 0; off < Math.min(size, MARKER_SCAN_MAX); off += chunk - keep) {
    const b = read(fd, off, chunk);
    for (let i = 0; i < needles.length; i++) if (b.includes(needles[i]!)) return markers[i]!;
    if (b.length < chunk) break;
  }
  return null;
}

export function classifyElf(path: string): ElfTls {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return { library: 'unreadable', sslSymbols: [], reason: (e as Error).message };
  }
  try {
    const secs = sections(fd);
    if (secs === null) return { library: 'not_elf', sslSymbols: [], reason: 'not a 64-bit little-endian ELF file' };
    const wanted = new Set(SSL_FUNCS);
    const syms = new Set<string>();
    for (const s of secs) if (s.type === 11 || s.type === 2) for (const n of definedSymbols(fd, secs, s, wanted)) syms.add(n);
    const sslSymbols = SSL_FUNCS.filter((f) => syms.has(f));
    if (sslSymbols.length > 0) return { library: 'openssl', sslSymbols, reason: `exports ${sslSymbols.join(', ')}` };
    const imported = secs.filter((s) => s.type === 11).flatMap((s) => definedSymbols(fd, secs, s, wanted, true));
    if (imported.length > 0) {
      return { library: 'imports_openssl', sslSymbols: [], reason: `imports ${imported.join(', ')} from a shared libssl: seen through that library's probe` };
    }
    const linked = linkedTls(fd, secs);
    if (linked?.lib === 'imports_openssl') return { library: 'imports_openssl', sslSymbols: [], reason: `links ${linked.via}: seen through that library's probe` };
    if (linked?.lib === 'gnutls') return { library: 'gnutls', sslSymbols: [], reason: `links ${linked.via}: GnuTLS is not probed (gnutls_record_send/recv would be the functions)` };
    if (secs.some((s) => s.name === '.go.buildinfo' || s.name === '.note.go.buildid' || s.name === '.gopclntab')) {
      return { library: 'go', sslSymbols, reason: "Go binary: crypto/tls is Go code with no SSL_write to probe (and Go's stacks defeat uretprobes)" };
    }
    const size = fstatSync(fd).size;
    const m = hasMarker(fd, size, ['rustls', 'BoringSSL', 'OPENSSL_internal', 'bun-']);
    if (m === 'rustls') return { library: 'rustls', sslSymbols, reason: 'Rust binary with rustls (marker "rustls"): TLS is internal Rust code, no exported symbols' };
    if (m !== null) return { library: 'boringssl', sslSymbols, reason: `statically linked BoringSSL without exported symbols (marker "${m}"), e.g. a Bun-built CLI: nothing to attach to` };
    return { library: 'none', sslSymbols, reason: 'no SSL_write/SSL_read symbols and no known TLS library marker' };
  } catch (e) {
    return { library: 'unreadable', sslSymbols: [], reason: (e as Error).message };
  } finally {
    closeSync(fd);
  }
}
