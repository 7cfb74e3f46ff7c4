import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SENSOR_EVENT_NAMES } from '../../src/events/names.js';
import { ScopeRegistry } from '../../src/scope/registry.js';
import { ScopeSocketServer } from '../../src/scope/socket.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { kernelSuite } from '../helpers/kernel.js';

/**
 * `witness run` against its own agent: the agent runs as nobody and attacks
 * the witness (key, session file, kill, ptrace, scope socket), outlives its
 * root, uses io_uring; bad input is refused before anything is spawned.
 */
const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');
const STATE = mkdtempSync(join(tmpdir(), 'witness-privsep-state-')); // 0700 root, like /var/lib/agent-witness
const PUB = mkdtempSync(join(tmpdir(), 'witness-privsep-')); // scripts and outputs the agent (nobody) may use
chmodSync(PUB, 0o777);

type Line = { event: string; attributes: Record<string, unknown> };

function witness(args: string[], env: NodeJS.ProcessEnv = {}) {
  const base = { ...process.env, WITNESS_STATE_DIR: STATE };
  delete base.SUDO_USER;
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...base, ...env } });
}

/** The session's records (the ledger's events file), in order. */
function sessionEvents(dir: string): Line[] {
  return readFileSync(join(dir, 'events.ndjson'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { event: Line }).event);
}

function script(name: string, text: string): string {
  const p = join(PUB, name);
  writeFileSync(p, text, { mode: 0o755 });
  return p;
}

let sessionN = 0;
const newSession = (): string => join(STATE, 'sessions', `s${++sessionN}`);

describe.skipIf(skip)('witness run: the agent runs unprivileged and cannot reach the witness', () => {
  beforeAll(() => {
    expect(witness(['keygen', '--out', join(STATE, 'pin')]).status).toBe(0);
  });
  afterAll(() => {
    rmSync(PUB, { recursive: true, force: true });
    rmSync(STATE, { recursive: true, force: true });
  });

  it.each([
    ['a user that does not exist', ['--user', 'no-such-user-wx'], /no such user 'no-such-user-wx'/],
    ['a group that does not exist', ['--user', 'nobody:no-such-group-wx'], /no such group 'no-such-group-wx'/],
    ['--as-root with --user', ['--as-root', '--user', 'nobody'], /--as-root and --user exclude each other/],
    ['root without --user or --as-root (and no sudo)', [], /refusing to run the command as root.*--user USER.*--as-root/],
    ['--user root without --as-root', ['--user', 'root'], /is root;.*--as-root/],
  ])('bad input, %s: one clear error, nothing spawned', (_name, flags, message) => {
    const marker = join(PUB, `marker-${Math.random().toString(36).slice(2)}`);
    const r = witness(['run', ...flags, '--', '/bin/touch', marker]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(existsSync(marker)).toBe(false);
  });

  it('a session dir that is a symlink is refused with the reason, nothing spawned', () => {
    const link = join(STATE, 'link-session');
    symlinkSync(PUB, link);
    const marker = join(PUB, 'marker-symlink');
    const r = witness(['run', '--user', 'nobody', '--session-dir', link, '--', '/bin/touch', marker]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is a symlink \(-> .*\); refusing to follow it/);
    expect(existsSync(marker)).toBe(false);
    expect(readdirSync(PUB).some((f) => f.startsWith('events'))).toBe(false);
  });

  it('--out through a symlink, or into a file another user owns, is refused', () => {
    const link = join(PUB, 'out-link');
    symlinkSync('/etc/witness-should-never-exist', link);
    const viaLink = witness(['run', '--user', 'nobody', '--no-ledger', '--out', link, '--', '/bin/true']);
    expect(viaLink.status).toBe(2);
    expect(viaLink.stderr).toMatch(/is a symlink; refusing to follow it/);
    expect(existsSync('/etc/witness-should-never-exist')).toBe(false);
    const theirs = join(PUB, 'theirs.ndjson');
    writeFileSync(theirs, '');
    spawnSync('chown', ['65534:65534', theirs]);
    const owned = witness(['run', '--user', 'nobody', '--no-ledger', '--out', theirs, '--', '/bin/true']);
    expect(owned.status).toBe(2);
    expect(owned.stderr).toMatch(/belongs to uid 65534/);
  });

  it('--user nobody: uid, gid, groups, HOME/USER/LOGNAME, no_new_privs; under sudo SUDO_USER is the default', () => {
    const out = join(PUB, 'id.txt');
    const cmd = `id -u; id -g; id -G; echo "$HOME $USER $LOGNAME"; grep NoNewPrivs /proc/self/status > ${out}.nnp; exit 0`;
    const r = witness(['run', '--user', 'nobody', '--no-ledger', '--out', join(PUB, 'ev1.ndjson'), '--', '/bin/sh', '-c', cmd]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['65534', '65534', '65534', '/nonexistent nobody nobody']);
    expect(readFileSync(`${out}.nnp`, 'utf8')).toMatch(/NoNewPrivs:\s+1/);
    const sudo = witness(['run', '--no-ledger', '--out', join(PUB, 'ev2.ndjson'), '--', '/bin/sh', '-c', 'id -u; echo $USER'], { SUDO_USER: 'nobody' });
    expect(sudo.status).toBe(0);
    expect(sudo.stdout.trim().split('\n')).toEqual(['65534', 'nobody']);
  });

  it('--as-root: one warning line, witness.agent.privileged in sensor.start and session.json, verify says what it means', () => {
    const session = newSession();
    const r = witness(['run', '--as-root', '--session-dir', session, '--out', join(STATE, 'root.ndjson'), '--', '/bin/sh', '-c', 'id -u']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('0');
    expect(r.stderr.split('\n').filter((l) => /WARNING/.test(l))).toEqual([expect.stringMatching(/--as-root: the agent runs as root and could rewrite its own record/)]);
    const start = sessionEvents(session)[0]!;
    expect(start.event).toBe('sensor.start');
    expect(start.attributes).toMatchObject({ 'witness.agent.privileged': true, 'witness.agent.uid': 0, 'witness.agent.user_source': '--as-root' });
    const summary = JSON.parse(readFileSync(join(session, 'session.json'), 'utf8'));
    expect(summary.agent['witness.agent.privileged']).toBe(true);
    const v = witness(['verify', '--pubkey', join(STATE, 'keys', 'host.pub'), session]);
    expect(v.stdout).toMatch(/^VERIFIED/);
    expect(v.stderr).toMatch(/ROOT AGENT: .* could read the signing key and rewrite and re-sign its own record/);
    const unpriv = newSession();
    expect(witness(['run', '--user', 'nobody', '--session-dir', unpriv, '--', '/bin/true']).status).toBe(0);
    expect(sessionEvents(unpriv)[0]!.attributes['witness.agent.privileged']).toBe(false);
    expect(witness(['verify', '--pubkey', join(STATE, 'keys', 'host.pub'), unpriv]).stderr).not.toMatch(/ROOT AGENT/);
  });

  const uring = script('uring.py', [
    'import ctypes, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'params = ctypes.create_string_buffer(120)',
    'fd = libc.syscall(425, 4, params)  # io_uring_setup(entries, params)',
    'print("fd" if fd >= 0 else f"errno {ctypes.get_errno()}")',
  ].join('\n'));

  it('io_uring_setup fails with EPERM in the agent tree; --allow-io-uring lets it through', () => {
    const denied = witness(['run', '--user', 'nobody', '--no-ledger', '--out', join(PUB, 'u1.ndjson'), '--', 'python3', uring]);
    expect(denied.status).toBe(0);
    expect(denied.stdout.trim()).toBe('errno 1');
    // a grandchild inherits the filter
    const deep = witness(['run', '--user', 'nobody', '--no-ledger', '--out', join(PUB, 'u2.ndjson'), '--', '/bin/sh', '-c', `sh -c 'python3 ${uring}'`]);
    expect(deep.stdout.trim()).toBe('errno 1');
    const session = newSession();
    const allowed = witness(['run', '--user', 'nobody', '--allow-io-uring', '--session-dir', session, '--out', join(PUB, 'u3.ndjson'), '--', 'python3', uring]);
    expect(allowed.status).toBe(0);
    expect(allowed.stdout.trim()).toBe('fd');
    expect(sessionEvents(session)[0]!.attributes['witness.agent.io_uring']).toBe('allowed');
    if ((SENSOR_EVENT_NAMES as readonly string[]).includes('security.io_uring')) {
      expect(sessionEvents(session).map((e) => e.event)).toContain('security.io_uring');
    }
  });

  it('as nobody, the agent tries to read the key, append to its session, kill and ptrace the witness, forge a scope: all fail, all recorded', async () => {
    const sockDir = mkdtempSync(join(tmpdir(), 'witness-privsep-sock-'));
    chmodSync(sockDir, 0o755); // only the socket's own mode (0600 root) stands in the way
    const registry = new ScopeRegistry();
    const server = await ScopeSocketServer.listen(registry, join(sockDir, 'scope.sock'));
    const session = newSession();
    const key = join(STATE, 'keys', 'host.key');
    const attack = script('attack.sh', `#!/bin/sh
G=$PPID
W=$(cut -d' ' -f4 /proc/$G/stat)
echo "witness=$W"
cat '${key}' >/dev/null 2>&1 && echo KEY_READ
echo '{"forged":true}' >> '${session}/events.ndjson' 2>/dev/null && echo APPENDED
kill -9 "$W" 2>/dev/null && echo KILLED
kill -9 "$G" 2>/dev/null && echo KILLED_GUARDIAN
python3 -c "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); sys.exit(0 if libc.ptrace(16, $W, 0, 0) == 0 else 1)" && echo PTRACED
python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('${join(sockDir, 'scope.sock')}')
except OSError as e:
    sys.exit(1)
s.sendall(b'{\\"op\\":\\"open\\",\\"run_id\\":\\"forged\\",\\"session_id\\":\\"forged\\",\\"tool_call_id\\":\\"forged\\",\\"pid\\":1}\\n')
print(s.recv(200))
" && echo SCOPE_FORGED
exit 9
`);
    // async: the scope server above lives in this process
    const r = await new Promise<{ status: number | null; pid: number; stdout: string; stderr: string }>((resolve) => {
      const env = { ...process.env, WITNESS_STATE_DIR: STATE };
      delete env.SUDO_USER;
      const child = spawn(process.execPath, [BIN, 'run', '--user', 'nobody', '--session-dir', session, '--out', join(STATE, 'attack.ndjson'), '--', attack], { env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => { stdout += d; });
      child.stderr.on('data', (d) => { stderr += d; });
      child.on('close', (status) => resolve({ status, pid: child.pid!, stdout, stderr }));
    });
    await server.close();
    rmSync(sockDir, { recursive: true, force: true });
    expect(r.stderr).toMatch(/witness: .* in [\d.]+s/); // finished normally, summary and all
    expect(r.status).toBe(9);
    expect(r.stdout.trim().split('\n')).toEqual([`witness=${r.pid}`]); // no attempt succeeded
    expect(registry.list().length).toBe(0);
    expect(server.stats.requests).toBe(0);

    const v = witness(['verify', '--pubkey', join(STATE, 'keys', 'host.pub'), session]);
    expect(v.stdout).toMatch(/^VERIFIED session/);
    const events = sessionEvents(session);
    const find = (event: string, pred: (a: Record<string, unknown>) => boolean) => events.find((e) => e.event === event && pred(e.attributes));
    expect(find('file.read_sensitive', (a) => a['file.path'] === key && a['witness.result'] === -13)).toBeDefined();
    expect(find('file.write', (a) => a['file.path'] === join(session, 'events.ndjson') && a['witness.result'] === -13)).toBeDefined();
    expect(find('security.ptrace', (a) => a['witness.ptrace.target_pid'] === r.pid && (a['witness.result'] as number) < 0)).toBeDefined();
    if ((SENSOR_EVENT_NAMES as readonly string[]).includes('security.kill')) {
      expect(events.filter((e) => e.event === 'security.kill').length).toBeGreaterThanOrEqual(2);
    }
    const last = events.filter((e) => e.event === 'sensor.stop').at(-1);
    expect(last?.attributes['process.exit.code']).toBe(9);
  }, 90_000);

  it('a double-forked grandchild acting 3 s after the root exited is still traced within --linger', () => {
    const session = newSession();
    const late = join(PUB, 'late-traced');
    const r = witness(['run', '--user', 'nobody', '--session-dir', session, '--out', join(STATE, 'late.ndjson'), '--', '/bin/sh', '-c',
      `( ( sleep 3; echo late > ${late} ) & ); exit 0`]);
    expect(r.status).toBe(0);
    expect(readFileSync(late, 'utf8')).toBe('late\n');
    const events = sessionEvents(session);
    expect(events.find((e) => e.event === 'file.write' && e.attributes['file.path'] === late)).toBeDefined();
    expect(events.some((e) => e.event === 'process.outlived_root')).toBe(false);
  }, 60_000);

  it('past --linger the survivors are named (process.outlived_root) and killed', () => {
    const session = newSession();
    const late = join(PUB, 'late-killed');
    const r = witness(['run', '--user', 'nobody', '--linger', '1s', '--session-dir', session, '--out', join(STATE, 'killed.ndjson'), '--', '/bin/sh', '-c',
      `( ( exec sleep 3 ) & ); ( ( sleep 3; echo late > ${late} ) & ); exit 0`]);
    expect(r.status).toBe(0);
    spawnSync('sleep', ['3']);
    expect(existsSync(late)).toBe(false);
    const events = sessionEvents(session);
    const outlived = events.filter((e) => e.event === 'process.outlived_root');
    expect(outlived.length).toBeGreaterThanOrEqual(2);
    for (const o of outlived) expect(o.attributes).toMatchObject({ 'witness.linger.action': 'killed', 'witness.linger.ms': 1000 });
    expect(outlived.map((o) => o.attributes['process.command'])).toContain('sleep');
    const killedPids = new Set(outlived.map((o) => o.attributes['process.pid']));
    const exits = events.filter((e) => e.event === 'process.exit' && killedPids.has(e.attributes['process.pid']));
    expect(exits.length).toBe(killedPids.size);
    for (const e of exits) expect(e.attributes['witness.exit.signal']).toBe(9);
    const summary = JSON.parse(readFileSync(join(session, 'session.json'), 'utf8'));
    expect(summary.agent['witness.linger.survivors'].map(Number).sort()).toEqual([...killedPids].map(Number).sort());
  }, 60_000);

  it('--leave-running: survivors are named as left running and go on', () => {
    const session = newSession();
    const r = witness(['run', '--user', 'nobody', '--linger', '1s', '--leave-running', '--session-dir', session, '--out', join(STATE, 'left.ndjson'), '--',
      '/bin/sh', '-c', '( ( exec sleep 7 ) & ); exit 0']);
    expect(r.status).toBe(0);
    const outlived = sessionEvents(session).filter((e) => e.event === 'process.outlived_root');
    expect(outlived).toHaveLength(1);
    expect(outlived[0]!.attributes['witness.linger.action']).toBe('left_running');
    const pid = outlived[0]!.attributes['process.pid'] as number;
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    process.kill(pid, 'SIGKILL');
    expect(JSON.parse(readFileSync(join(session, 'session.json'), 'utf8')).agent['witness.linger.leave_running']).toBe(true);
  }, 60_000);

  it('when the witness is killed, the agent tree dies with it, and verify reports the unclosed session', async () => {
    const session = newSession();
    const pidFile = join(PUB, 'tree.pids');
    const env = { ...process.env, WITNESS_STATE_DIR: STATE };
    delete env.SUDO_USER;
    const child = spawn(process.execPath, [BIN, 'run', '--user', 'nobody', '--session-dir', session, '--out', join(STATE, 'killed-witness.ndjson'), '--',
      '/bin/sh', '-c', `( ( exec sleep 60 ) & echo $! >> ${pidFile} ) ; sleep 60 & echo $! >> ${pidFile}; echo $$ >> ${pidFile}; wait`], { env, stdio: 'ignore' });
    for (let i = 0; i < 300 && !(existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim().split('\n').length >= 3); i++) await new Promise((r) => setTimeout(r, 50));
    const pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
    expect(pids).toHaveLength(3);
    for (const p of pids) expect(existsSync(`/proc/${p}`)).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // a checkpoint-worth of records on disk
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    let alive = pids;
    for (let i = 0; i < 100 && alive.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      alive = alive.filter((p) => existsSync(`/proc/${p}`) && !/\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8')));
    }
    expect(alive).toEqual([]);
    expect(existsSync(join(session, 'session.json'))).toBe(false);
    const v = witness(['verify', '--pubkey', join(STATE, 'keys', 'host.pub'), session]);
    // never a clean VERIFIED: the session was cut off, and verify says how much of it is sealed
    expect(v.stdout).toMatch(/^MISMATCH session\.json: .*never closed/);
    // sensor.start (who the agent ran as) was sealed before the agent ran
    expect(v.stdout).toMatch(/^UNCLOSED session .*: last checkpoint #\d+ \(\w+, [^)]+\) seals [1-9]\d* of \d+ records/m);
  }, 60_000);
});
