import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyElf } from '../src/sensor/elf-tls.js';
import { mappedFiles, TlsUprobes, type UprobeNative } from '../src/sensor/tls-uprobes.js';

describe('TLS probe discovery', () => {
  it('node exports OpenSSL; a text file is not ELF; a file without TLS says so', () => {
    expect(classifyElf(process.execPath)).toMatchObject({ library: 'openssl', sslSymbols: ['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex'] });
    const dir = mkdtempSync(join(tmpdir(), 'witness-elf-'));
    writeFileSync(join(dir, 'x.txt'), 'hello');
    expect(classifyElf(join(dir, 'x.txt')).library).toBe('not_elf');
    expect(classifyElf(join(dir, 'missing')).library).toBe('unreadable');
  });

  it('reads executable file mappings from /proc/PID/maps text (deleted and anonymous ones skipped)', () => {
    const maps = [
      '00400000-00401000 r-xp 00000000 08:01 1234 /usr/bin/node',
      '7f00-7f01 r--p 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libssl.so.3',
      '7f01-7f02 r-xp 00001000 08:01 99 /usr/lib/x86_64-linux-gnu/libssl.so.3',
      '7f02-7f03 r-xp 00000000 00:00 0 ',
      '7f03-7f04 r-xp 00000000 08:01 77 /tmp/gone (deleted)',
      '7f04-7f05 rwxp 00000000 00:00 0 [stack]',
    ].join('\n');
    expect(mappedFiles(maps)).toEqual(['/usr/bin/node', '/usr/lib/x86_64-linux-gnu/libssl.so.3']);
  });

  it('attaches a file once, whatever name it is reached by; files without OpenSSL get a row and no attach', () => {
    const calls: string[] = [];
    const native: UprobeNative = {
      attachTlsUprobes: (p) => {
        calls.push(p);
        return { attached: 4, error: 0, functions: ['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex'].map((func) => ({ func, error: 0 })) };
      },
    };
    const up = new TlsUprobes(native);
    expect(up.attach(process.execPath, 0)?.attached).toHaveLength(4);
    expect(up.attach(process.execPath, 7)).toBeNull();
    expect(up.attach('/etc/hostname', 7)?.library).toBe('not_elf');
    expect(calls).toEqual([process.execPath]);
    expect(up.scanPid(process.pid).some((r) => r.library === 'openssl')).toBe(false); // node was attached already
  });
});
