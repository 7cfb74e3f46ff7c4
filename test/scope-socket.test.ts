import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as scopeCli } from '../src/cli/scope.js';
import { scopeRequest } from '../src/scope/client.js';
import { MAX_REQUEST_BYTES, scopeSocketPath } from '../src/scope/protocol.js';
import { ScopeRegistry } from '../src/scope/registry.js';
import { ScopeSocketServer } from '../src/scope/socket.js';
import { rootSuite } from './helpers/root.js';

const run = promisify(execFile);
const { skip } = rootSuite('the scope socket suite');

/** Sends raw bytes, collects every response line until the server hangs up or `lines` arrived. */
function raw(path: string, payload: string | Buffer, lines = 1): Promise<{ replies: Record<string, unknown>[]; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const replies: Record<string, unknown>[] = [];
    let done = false;
    const finish = (closedByServer: boolean): void => { if (!done) { done = true; sock.destroy(); resolve({ replies, closedByServer }); } };
    sock.on('connect', () => sock.write(payload));
    sock.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) { replies.push(JSON.parse(buf.slice(0, nl))); buf = buf.slice(nl + 1); }
      if (replies.length >= lines) setTimeout(() => finish(false), 50);
    });
    sock.on('end', () => finish(true));
    sock.on('error', reject);
  });
}

describe.skipIf(skip)('scope socket server', () => {
  let dir: string;
  let path: string;
  let server: ScopeSocketServer;
  const registry = new ScopeRegistry();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'witness-scope-sock-'));
    chmodSync(dir, 0o755); // so only the socket's own mode can keep a non-root client out
    path = join(dir, 'scope.sock');
    server = new ScopeSocketServer(registry, path);
    await server.start();
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('default path and override', () => {
    expect(scopeSocketPath({})).toBe('/run/agent-witness/scope.sock');
    expect(scopeSocketPath({ WITNESS_SCOPE_SOCKET: '/tmp/x.sock' })).toBe('/tmp/x.sock');
  });

  it('the socket is root-owned, mode 0600', () => {
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect([st.uid, st.gid]).toEqual([0, 0]);
  });

  it('opens, lists and closes a scope bound to a live pid', async () => {
    const opened = await scopeRequest(path, { op: 'open', run_id: 'r1', session_id: 's1', tool_call_id: 't1', tool_name: 'bash', pid: process.pid });
    expect(opened).toMatchObject({ ok: true, scope: { run_id: 'r1', tool_call_id: 't1', tool_name: 'bash', pid: process.pid, closed_ns: null } });
    const listed = await scopeRequest(path, { op: 'list' });
    expect(listed.ok && listed.scopes?.map((s) => s.tool_call_id)).toEqual(['t1']);
    const closed = await scopeRequest(path, { op: 'close', tool_call_id: 't1' });
    expect(closed.ok && closed.scope?.closed_ns).toMatch(/^\d+$/);
  });

  it('`witness scope open|list|close` drive the same socket and surface refusals as errors', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { lines.push(String(s)); return true; });
    try {
      expect(await scopeCli(['open', '--socket', path, '--run', 'r2', '--session', 's2', '--tool-call', 'cli-1', '--tool-name', 'grep', '--pid', String(process.pid)])).toBe(0);
      expect(await scopeCli(['list', '--socket', path])).toBe(0);
      expect(await scopeCli(['close', '--socket', path, '--tool-call', 'cli-1'])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(JSON.parse(lines[0]!)).toMatchObject({ run_id: 'r2', tool_call_id: 'cli-1', tool_name: 'grep', pid: process.pid });
    expect(JSON.parse(lines[1]!).map((s: { tool_call_id: string }) => s.tool_call_id)).toContain('cli-1');
    expect(JSON.parse(lines[2]!).closed_ns).toMatch(/^\d+$/);
    await expect(scopeCli(['close', '--socket', path, '--tool-call', 'cli-1'])).rejects.toThrow(/witness scope: the daemon refused: tool_call_id: no open scope for tool call 'cli-1'/);
    await expect(scopeCli(['open', '--socket', path, '--run', 'r', '--session', 's', '--tool-call', 't'])).rejects.toThrow(/exactly one of --pid or --cgroup/);
    await expect(scopeCli(['open', '--socket', path, '--run', 'r', '--session', 's', '--tool-call', 't', '--pid', 'abc'])).rejects.toThrow(/--pid: must be a positive whole number/);
    await expect(scopeCli(['list', '--socket', join(dir, 'absent.sock')])).rejects.toThrow(/no daemon is listening/);
  });

  it('answers bad requests with specific errors and keeps the connection and the server going', async () => {
    const { replies } = await raw(path, [
      'not json',
      JSON.stringify({ op: 'open', run_id: 'r', session_id: 's', tool_call_id: 't' }),
      JSON.stringify({ op: 'open', run_id: 'r', session_id: 's', tool_call_id: 't', pid: 0x3ffffff0 }),
      JSON.stringify({ op: 'open', run_id: 'r', session_id: 's', tool_call_id: 't', pid: '12' }),
      JSON.stringify({ op: 'close', tool_call_id: 't', extra: 1 }),
      JSON.stringify({ op: 'explode' }),
      JSON.stringify({ op: 'open', run_id: 'r\u0001', session_id: 's', tool_call_id: 't', pid: 1 }),
      JSON.stringify({ op: 'close', tool_call_id: 'never-opened' }),
      JSON.stringify({ op: 'ping' }),
    ].join('\n') + '\n', 9);
    expect(replies.map((r) => (r.ok ? 'ok' : (r.error as { code: string }).code))).toEqual(
      ['bad_request', 'bad_request', 'rejected', 'bad_request', 'bad_request', 'bad_request', 'bad_request', 'rejected', 'ok']);
    const messages = replies.map((r) => (r.error as { message?: string } | undefined)?.message ?? '');
    expect(messages[0]).toMatch(/not JSON/);
    expect(messages[1]).toMatch(/\$\.pid: give exactly one of pid or cgroup/);
    expect(messages[2]).toMatch(/pid 1073741808 is not running/);
    expect(messages[3]).toMatch(/\$\.pid: .*expected number/);
    expect(messages[4]).toMatch(/unknown key\(s\) extra/);
    expect(messages[5]).toMatch(/\$\.op/);
    expect(messages[6]).toMatch(/\$\.run_id: must not contain control characters/);
    expect(messages[7]).toMatch(/no open scope for tool call 'never-opened'/);
  });

  it('refuses a request over 64 KiB, hangs up that client, and serves the next one', async () => {
    const big = JSON.stringify({ op: 'open', run_id: 'x'.repeat(MAX_REQUEST_BYTES + 10), session_id: 's', tool_call_id: 't', pid: 1 });
    const { replies, closedByServer } = await raw(path, big); // no newline even: the size alone decides
    expect(replies[0]).toMatchObject({ ok: false, error: { code: 'too_large' } });
    expect(closedByServer).toBe(true);
    expect(await scopeRequest(path, { op: 'ping' })).toEqual({ ok: true });
  });

  it('refuses a non-root client at connect (run as nobody)', async () => {
    const client = join(dir, 'client.mjs');
    writeFileSync(client, `import { createConnection } from 'node:net';
const s = createConnection(process.argv[2]);
s.on('connect', () => { s.write('{"op":"list"}\\n'); s.on('data', (d) => { process.stdout.write('CONNECTED ' + d); process.exit(0); }); });
s.on('error', (e) => { process.stdout.write('REFUSED ' + e.code); process.exit(0); });
`);
    chmodSync(client, 0o644);
    const { stdout } = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, client, path]);
    expect(stdout).toBe('REFUSED EACCES');
    // and the same client as root gets in: the refusal was the socket's mode, not the script
    const { stdout: asRoot } = await run(process.execPath, [client, path]);
    expect(asRoot).toMatch(/^CONNECTED \{"ok":true/);
  });

  it('will not start over a live socket or a non-socket file; replaces a stale one', async () => {
    await expect(new ScopeSocketServer(registry, path).start()).rejects.toThrow(/another process is serving/);
    const file = join(dir, 'plain');
    writeFileSync(file, '');
    await expect(new ScopeSocketServer(registry, file).start()).rejects.toThrow(/not a socket/);
    const stalePath = join(dir, 'stale.sock');
    // a daemon killed with SIGKILL leaves its socket file behind
    const crashed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stalePath)}, () => console.log('up'))`]);
    await new Promise((r) => crashed.stdout.once('data', r));
    crashed.kill('SIGKILL');
    await new Promise((r) => crashed.once('exit', r));
    expect(statSync(stalePath).isSocket()).toBe(true);
    const second = new ScopeSocketServer(registry, stalePath);
    await second.start();
    expect(await scopeRequest(stalePath, { op: 'ping' })).toEqual({ ok: true });
    await second.close();
  });
});
