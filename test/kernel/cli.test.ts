import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envelopeSchema } from '../../src/events/envelope.js';
import { CONTEXT_KEYS, ContextJoiner } from '../../src/events/compact.js';
import { compactSensorEnvelopeSchema, sensorEnvelopeSchema } from '../../src/events/schemas.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { kernelSuite } from '../helpers/kernel.js';

const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');
// sessions from these tests go to a throwaway state dir, never /var/lib/agent-witness
const STATE = mkdtempSync(join(tmpdir(), 'witness-state-'));

function witness(args: string[], opts: { uid?: number } = {}) {
  const cmd = opts.uid !== undefined ? unprivileged(opts.uid, args) : [process.execPath, BIN, ...args];
  return spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 30_000, env: { ...process.env, WITNESS_STATE_DIR: STATE } });
}

/**
 * The CLI as another user. A checkout under /root (0700) is not traversable for that user, nor
 * is a Node the quick start put in its .node/: in a private mount namespace the checkout is
 * bind-mounted on a fresh directory in /tmp, and the user runs the same files from there.
 */
const MOUNT_POINTS: string[] = []; // empty outside the namespaces; removed after the suite
function unprivileged(uid: number, args: string[]): string[] {
  const mnt = mkdtempSync(join(tmpdir(), 'witness-unpriv-'));
  MOUNT_POINTS.push(mnt);
  const node = process.execPath.startsWith(`${PACKAGE_ROOT}/`) ? join(mnt, relative(PACKAGE_ROOT, process.execPath)) : process.execPath;
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', PACKAGE_ROOT, mnt,
    'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', node, join(mnt, 'bin', 'witness.js'), ...args];
}

describe.skipIf(skip)('witness CLI on the real kernel', () => {
  const dir = mkdtempSync(join(tmpdir(), 'witness-cli-'));
  chmodSync(dir, 0o777); // the agent runs as nobody (`--user nobody`) and writes here
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(STATE, { recursive: true, force: true });
    for (const m of MOUNT_POINTS) rmdirSync(m); // never recursive: it held a bind of the checkout
  });

  it('is built (npm test compiles dist/ first)', () => {
    expect(existsSync(join(PACKAGE_ROOT, 'dist', 'cli', 'main.js'))).toBe(true);
  });

  it('run: streams NDJSON that validates against the contract, exits with the command\'s code', () => {
    const r = witness(['run', '--user', 'nobody', '--', '/bin/sh', '-c', `echo hi > ${dir}/f; rm ${dir}/f; exit 7`]);
    expect(r.status).toBe(7);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    // compact records (docs/ndjson.md) validate as such, and joined as full records
    const joiner = new ContextJoiner();
    let compact = 0;
    for (const l of lines) {
      expect(envelopeSchema.safeParse(l).success).toBe(true);
      if (l.event === 'sensor.heartbeat') continue;
      if (!CONTEXT_KEYS.some((k) => k in l.attributes)) {
        compact++;
        expect(compactSensorEnvelopeSchema.safeParse(l).error).toBeUndefined();
      }
      expect(sensorEnvelopeSchema.safeParse(joiner.join(l)).error).toBeUndefined();
    }
    expect(compact).toBeGreaterThan(0); // the shell's unlink and exit follow its exec
    expect(joiner.orphans).toBe(0);
    const events = lines.map((l) => l.event);
    expect(events).toEqual(expect.arrayContaining(['process.exec', 'file.write', 'file.unlink', 'process.exit', 'sensor.heartbeat']));
    expect(r.stderr).toMatch(/witness: .*process\.exec=2 .*drops=0/);
  });

  it('run --out writes NDJSON to a file and leaves stdout to the command', () => {
    const out = join(dir, 'events.ndjson');
    const r = witness(['run', '--user', 'nobody', '--out', out, '--', '/bin/echo', 'to-stdout']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('to-stdout\n');
    const events = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l).event);
    // the guardian's credential drop (setresgid, setresuid to nobody) comes first, then the command
    expect(events.slice(0, 3)).toEqual(['security.setgid', 'security.setuid', 'process.exec']);
  });

  it('run: a command that cannot start exits 127 with a clear message', () => {
    const r = witness(['run', '--user', 'nobody', '--', '/nonexistent/cmd']);
    expect(r.status).toBe(127);
    expect(r.stderr).toContain('/nonexistent/cmd');
  });

  it('run --sign-key --session-dir: the session verifies with the pinned key, and one flipped byte does not', () => {
    const key = join(dir, 'k');
    expect(witness(['keygen', '--out', key]).status).toBe(0);
    const session = join(dir, 'session');
    const r = witness(['run', '--user', 'nobody', '--sign-key', `${key}.key`, '--session-dir', session, '--', '/bin/sh', '-c', `echo x > ${dir}/g; exit 4`]);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`session ${session}`);
    const ok = witness(['verify', '--pubkey', `${key}.pub`, session]);
    expect(ok.stdout).toMatch(/^VERIFIED/);
    expect(ok.status).toBe(0);
    const events = join(session, 'events.ndjson');
    const text = readFileSync(events, 'utf8');
    const at = text.indexOf(`${dir}/g`);
    expect(at).toBeGreaterThan(0);
    writeFileSync(events, `${text.slice(0, at)}X${text.slice(at + 1)}`);
    const bad = witness(['verify', '--pubkey', `${key}.pub`, session]);
    expect(bad.stdout).toMatch(/^MISMATCH/);
    expect(bad.status).toBe(1);
  });

  it('run --scope-run/--scope-session: every event of the tree carries the scope, opened and closed around it', () => {
    const r = witness(['run', '--user', 'nobody', '--no-ledger', '--scope-run', 'R7', '--scope-session', 'S7', '--scope-tool-name', 'bash', '--',
      '/bin/sh', '-c', `/bin/sh -c "echo x > ${dir}/scoped"; exit 0`]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].event).toBe('scope.open');
    const tree = lines.filter((l) => /^(process|file)\./.test(l.event));
    expect(tree.map((l) => l.event)).toEqual(expect.arrayContaining(['process.exec', 'file.write', 'process.exit']));
    for (const l of tree) {
      expect(l.attributes).toMatchObject({ 'witness.scope.run_id': 'R7', 'witness.scope.session_id': 'S7', 'witness.scope.tool_name': 'bash' });
      expect(l.attributes['witness.agent']).toBe('unattributed');
    }
    expect(lines.map((l) => l.event)).toContain('scope.close');
  });

  it('probe --json: kernel, BTF and every program attached', () => {
    const r = witness(['probe', '--json']);
    expect(r.status).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p).toMatchObject({ btf: true, tracefs: true, core_ok: true, error: null });
    // every program attached, but for one of each pair of alternatives: io_uring_submit_req/_sqe, and
    // the direct-load / probe-read (..._nocast) twins of the three walking open exits (bpf/sensitive.bpf.h)
    // and of fchmod's exit (bpf/chmod.bpf.h)
    expect(p.attached + p.skipped + p.on_demand).toBe(p.total); // on demand: the --tls-metadata uprobes
    expect(p.skipped).toBe(5);
    expect(p.total).toBeGreaterThan(40);
  });

  it('without root: one line that names the missing capability and the fix', () => {
    for (const args of [['probe'], ['run', '--', '/bin/true']]) {
      const r = witness(args, { uid: 65534 });
      expect(r.status).not.toBe(0);
      const text = `${r.stdout}${r.stderr}`.trim();
      expect(text.split('\n').length).toBe(1);
      expect(text).toMatch(/CAP_BPF/);
      expect(text).toMatch(/root/);
    }
  });

  it('mounts tracefs when it is missing', () => {
    // In a private mount namespace: the host's tracefs (and every other
    // sensor on this machine) is never touched, and umount cannot be "busy".
    const script = `umount /sys/kernel/tracing && ! test -e /sys/kernel/tracing/events && ` +
      `"${process.execPath}" "${BIN}" probe --json >/dev/null && test -e /sys/kernel/tracing/events && echo remounted`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, WITNESS_STATE_DIR: STATE } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('remounted');
    expect(existsSync('/sys/kernel/tracing/events')).toBe(true);
  });
});
