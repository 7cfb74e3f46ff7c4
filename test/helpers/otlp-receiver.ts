import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback OTLP/HTTP logs receiver for tests: records every request body,
 * answers with `respond` (default 200 {}), and can go away and come back on
 * the same port.
 */
export interface ReceivedRequest {
  path: string;
  contentType: string | undefined;
  body: any;
}

export class OtlpReceiver {
  readonly requests: ReceivedRequest[] = [];
  respond: (req: ReceivedRequest) => { status: number; body?: string; headers?: Record<string, string> } = () => ({ status: 200, body: '{}' });
  private server: Server | null = null;
  port = 0;

  async start(port = 0): Promise<this> {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const r: ReceivedRequest = { path: req.url ?? '', contentType: req.headers['content-type'], body: text ? JSON.parse(text) : null };
        const answer = this.respond(r);
        if (answer.status >= 200 && answer.status < 300) this.requests.push(r);
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        res.end(answer.body ?? '{}');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Every log record accepted so far, in arrival order. */
  records(): any[] {
    return this.requests.flatMap((r) => r.body.resourceLogs.flatMap((rl: any) => rl.scopeLogs.flatMap((sl: any) => sl.logRecords)));
  }

  /** Attribute value of a record by key. */
  static attr(record: any, key: string): any {
    return record.attributes.find((kv: any) => kv.key === key)?.value;
  }
}
