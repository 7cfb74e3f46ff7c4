import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { log } from '../log.js';
import type { NoteSignerKey, NoteVerifierKey } from '../ledger/note-keys.js';
import { addCheckpoint, type AddCheckpointContext } from './add-checkpoint.js';
import { CosignerState } from './state.js';

export interface CosignerOptions {
  stateDir: string;
  key: NoteSignerKey;
  logs: NoteVerifierKey[];
  /** POSIX seconds; injectable so a test can warp time. */
  now?: () => number;
}

const MAX_BODY = 64 * 1024;

/**
 * The witness's HTTP service. POST /add-checkpoint (c2sp.org/tlog-witness);
 * GET /checkpoint/<origin> returns the latest cosigned checkpoint with the
 * witness's cosignature appended (a monitoring read: what a verifier compares
 * a state dir against; the spec leaves monitor retrieval open).
 */
export class CosignerServer {
  readonly state: CosignerState;
  private readonly ctx: AddCheckpointContext;
  private server: http.Server | null = null;

  constructor(opts: CosignerOptions) {
    this.state = new CosignerState(opts.stateDir);
    const logs = new Map<string, NoteVerifierKey[]>();
    for (const k of opts.logs) logs.set(k.name, [...(logs.get(k.name) ?? []), k]);
    this.ctx = { state: this.state, key: opts.key, logs, now: opts.now ?? (() => Math.floor(Date.now() / 1000)) };
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    this.server = http.createServer((req, res) => { void this.handle(req, res); });
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const reply = (status: number, body: string, contentType = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://witness');
      if (req.method === 'GET' && url.pathname.startsWith('/checkpoint/')) {
        const s = this.state.get(decodeURIComponent(url.pathname.slice('/checkpoint/'.length)));
        if (!s) return reply(404, 'no checkpoint cosigned for this origin\n');
        return reply(200, `${s.checkpoint}${s.cosignature}`);
      }
      if (url.pathname !== '/add-checkpoint') return reply(404, 'not found\n');
      if (req.method !== 'POST') return reply(405, 'POST only\n');
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of req) {
        n += (c as Buffer).length;
        if (n > MAX_BODY) return reply(400, 'request body too large\n');
        chunks.push(c as Buffer);
      }
      const r = await addCheckpoint(this.ctx, Buffer.concat(chunks).toString('utf8'));
      reply(r.status, r.body, r.contentType);
    } catch (err) {
      log.error({ err }, 'cosigner request failed');
      if (!res.headersSent) reply(500, 'internal error\n');
    }
  }

  async close(): Promise<void> {
    if (this.server) {
      const s = this.server;
      this.server = null;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    this.state.close();
  }
}
