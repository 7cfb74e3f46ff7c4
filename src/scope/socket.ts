import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { WitnessError, isWitnessError } from '../errors.js';
import { jsonPath } from '../manifest/load.js';
import { log } from '../log.js';
import { closeRootOnly, listenRootOnly } from './root-socket.js';
import { MAX_REQUEST_BYTES, scopeRequestSchema, wireScope, type ScopeRequest, type ScopeResponse } from './protocol.js';
import type { ScopeRegistry } from './registry.js';

/**
 * The daemon's local scope API: a Unix socket, root-owned, mode 0600, so
 * only root can connect (Node has no SO_PEERCRED; the file mode is the
 * access check, and the kernel applies it at connect(2)). One JSON request
 * per line, one JSON response per line. A bad request is answered and
 * forgotten; it never takes the server down.
 */
export class ScopeSocketServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly stats = { requests: 0, rejected: 0 };

  constructor(private readonly registry: ScopeRegistry, readonly path: string, private readonly idleMs = 30_000) {}

  /** Constructs and starts a server in one step. */
  static async listen(registry: ScopeRegistry, path: string): Promise<ScopeSocketServer> {
    const server = new ScopeSocketServer(registry, path);
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    if (existsSync(dirname(this.path))) await this.clearStale();
    this.server = await listenRootOnly(this.path, 'scope', (sock) => this.accept(sock));
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeRootOnly(server, this.sockets, this.path);
  }

  /** A socket file left by a dead daemon is removed; a live one, or a non-socket, is an error. */
  private async clearStale(): Promise<void> {
    let st;
    try { st = lstatSync(this.path); } catch { return; }
    if (!st.isSocket()) throw new WitnessError('E_IO', 'exists and is not a socket; remove it or choose another --socket path', { file: this.path });
    const live = await new Promise<boolean>((resolve) => {
      const c = createConnection(this.path);
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (live) throw new WitnessError('E_IO', 'another process is serving this scope socket', { file: this.path });
    unlinkSync(this.path);
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    // a client that connects and goes quiet must not hold a descriptor forever
    sock.setTimeout(this.idleMs, () => sock.destroy());
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let pending = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) return this.refuseLarge(sock);
        if (line.trim() !== '') this.reply(sock, this.handle(line));
      }
      if (Buffer.byteLength(pending) > MAX_REQUEST_BYTES) this.refuseLarge(sock);
    });
  }

  private refuseLarge(sock: Socket): void {
    this.stats.rejected++;
    // the line framing is lost past this point: answer and hang up
    sock.end(`${JSON.stringify({ ok: false, error: { code: 'too_large', message: `request exceeds ${MAX_REQUEST_BYTES} bytes` } } satisfies ScopeResponse)}\n`);
    sock.removeAllListeners('data');
  }

  private reply(sock: Socket, res: ScopeResponse): void {
    if (!res.ok) this.stats.rejected++;
    if (!sock.destroyed) sock.write(`${JSON.stringify(res)}\n`);
  }

  /** One request line → its response. Public so tests and in-process callers share the path. */
  handle(line: string): ScopeResponse {
    this.stats.requests++;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      return { ok: false, error: { code: 'bad_request', message: `not JSON: ${(err as Error).message}` } };
    }
    const parsed = scopeRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = jsonPath(issue.path);
      const message = issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : issue.message;
      return { ok: false, error: { code: 'bad_request', message: `${field}: ${message}`, field } };
    }
    try {
      return this.apply(parsed.data);
    } catch (err) {
      if (isWitnessError(err)) return { ok: false, error: { code: 'rejected', message: err.message, ...(err.field ? { field: err.field } : {}) } };
      log.error({ err: (err as Error).message }, 'scope request failed');
      return { ok: false, error: { code: 'internal', message: (err as Error).message } };
    }
  }

  private apply(req: ScopeRequest): ScopeResponse {
    switch (req.op) {
      case 'ping': return { ok: true };
      case 'list': return { ok: true, scopes: this.registry.list().map(wireScope) };
      case 'close': return { ok: true, scope: wireScope(this.registry.close(req.tool_call_id, req.run_id)) };
      case 'open': {
        const scope = this.registry.open({
          runId: req.run_id, sessionId: req.session_id, toolCallId: req.tool_call_id, toolName: req.tool_name ?? null,
          ...(req.pid !== undefined ? { pid: req.pid } : {}),
          ...(req.cgroup !== undefined ? { cgroup: req.cgroup } : {}),
          ...(req.ttl_seconds !== undefined ? { ttlSeconds: req.ttl_seconds } : {}),
        });
        return { ok: true, scope: wireScope(scope) };
      }
    }
  }
}
