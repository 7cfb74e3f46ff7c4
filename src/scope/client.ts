import { createConnection } from 'node:net';
import { WitnessError } from '../errors.js';
import type { ScopeResponse } from './protocol.js';

/** Sends one request to the scope socket and returns its response line, parsed. */
export function scopeRequest(path: string, request: Record<string, unknown>, timeoutMs = 5000): Promise<ScopeResponse> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new WitnessError('E_IO', 'no answer from the scope socket', { file: path })); }, timeoutMs);
    sock.setEncoding('utf8');
    sock.once('connect', () => sock.write(`${JSON.stringify(request)}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as ScopeResponse);
      } catch (err) {
        reject(new WitnessError('E_IO', `malformed answer from the scope socket: ${(err as Error).message}`, { file: path }));
      }
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = err.code === 'EACCES' ? 'permission denied (the socket is root-only)'
        : err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'no daemon is listening (is the witness daemon running?)'
          : err.message;
      reject(new WitnessError('E_IO', `cannot reach the scope socket: ${hint}`, { file: path, cause: err }));
    });
  });
}
