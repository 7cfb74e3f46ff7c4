import { chmodSync, chownSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { WitnessError } from '../errors.js';
import { log } from '../log.js';

/**
 * A unix socket only root can use (the scope and resident sockets): 0600 root:root from its first
 * instant. The directory is made 0700 when missing; a stale socket must be cleared by the caller.
 * The bind happens under a umask of 0177, restored in the same synchronous stretch: listen(path)
 * binds before it returns (only 'listening' is async), so no other code runs under that umask.
 */
export async function listenRootOnly(path: string, label: string, onConnection: (sock: Socket) => void): Promise<Server> {
  if (!existsSync(dirname(path))) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const server = createServer(onConnection);
  const old = process.umask(0o177);
  let listening: Promise<void>;
  try {
    listening = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => { server.off('error', reject); resolve(); });
    });
  } finally {
    process.umask(old);
  }
  try {
    await listening;
  } catch (err) {
    throw new WitnessError('E_IO', `cannot listen on the ${label} socket (${(err as Error).message})`, { file: path, cause: err });
  }
  chmodSync(path, 0o600);
  chownSync(path, 0, 0);
  server.on('error', (err) => log.error({ err: err.message, path }, `${label} socket error`));
  return server;
}

/** Ends every connection, closes the server and removes the socket file. */
export async function closeRootOnly(server: Server | undefined, sockets: Set<Socket>, path: string): Promise<void> {
  for (const s of sockets) s.destroy();
  if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  try { unlinkSync(path); } catch { /* already gone */ }
}
