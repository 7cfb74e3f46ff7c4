import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { findCgroup2Mount } from '../../src/identity/cgroup.js';
import { AttributionEnricher } from '../../src/identity/enricher.js';
import { parseManifest } from '../../src/manifest/load.js';
import { ScopeRegistry } from '../../src/scope/registry.js';
import { toEnvelope } from '../../src/sensor/ndjson.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { WitnessSensor } from '../../src/sensor/sensor.js';
import { kernelSuite } from '../helpers/kernel.js';

/**
 * Identity an unprivileged user cannot forge: a unit name they give their own
 * (delegated) cgroup, and the binary at a path they can rename over.
 */
const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');
const mount = findCgroup2Mount();
const sha = (p: string | Buffer): string => createHash('sha256').update(typeof p === 'string' ? readFileSync(p) : p).digest('hex');

describe.skipIf(skip)('identity the agent cannot forge', () => {
  const dir = mkdtempSync(join(tmpdir(), 'witness-forge-'));
  chmodSync(dir, 0o777);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(mount === null)('a nobody-owned delegated cgroup named coder.service is not the system unit coder.service', async () => {
    const top = `/witness-forge-${process.pid}`;
    const root = `${top}/root-owned/coder.service`; // control: what a real system unit's cgroup looks like
    const deleg = `${top}/user-deleg`; // delegated to nobody, who names a child as they like
    const fake = `${deleg}/coder.service`;
    mkdirSync(join(mount!, root), { recursive: true });
    mkdirSync(join(mount!, fake), { recursive: true });
    for (const p of [deleg, fake]) {
      chownSync(join(mount!, p), 65534, 65534);
      chownSync(join(mount!, p, 'cgroup.procs'), 65534, 65534);
    }
    const manifest = { version: 1, agents: [{ name: 'coder', match: [{ unit: 'coder.service' }] }] };
    const out: Envelope[] = [];
    const clock = { bootToEpochNs: 0n };
    const enricher = new AttributionEnricher({ clock, registry: new ScopeRegistry(), manifest: parseManifest(JSON.stringify(manifest), 'agents.json') });
    const exited = new Map<number, () => void>();
    const sensor = WitnessSensor.open({
      maxLatencyMs: 5,
      onEvent: (ev) => {
        out.push(...enricher.enrich(ev, toEnvelope(ev, sensor.clock)));
        if (ev.kind === 'exit') exited.get(ev.pid)?.();
      },
    });
    clock.bootToEpochNs = sensor.clock.bootToEpochNs;
    const run = async (cg: string, file: string): Promise<Envelope | undefined> => {
      // root moves the shell into the cgroup, then it becomes nobody and writes
      const child = sensor.spawnTraced('/bin/sh', ['-c',
        `echo $$ > ${mount}${cg}/cgroup.procs && exec setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo x > ${file}'`], { stdio: 'ignore' });
      const seen = new Promise<void>((r) => exited.set(child.pid!, r));
      await new Promise((r) => child.once('exit', r));
      await Promise.race([seen, new Promise((r) => setTimeout(r, 2000))]);
      await new Promise((r) => setTimeout(r, 50));
      return out.find((e) => e.event === 'file.write' && e.attributes['file.path'] === file);
    };
    try {
      const real = await run(root, join(dir, 'in-root-owned'));
      expect(real?.attributes).toMatchObject({ 'witness.systemd.unit': 'coder.service', 'witness.agent': 'coder' });
      const forged = await run(fake, join(dir, 'in-delegated'));
      expect(forged?.attributes['witness.cgroup.path']).toBe(fake);
      expect(forged?.attributes['witness.systemd.unit']).toBeUndefined();
      expect(forged?.attributes).toMatchObject({ 'witness.systemd.user_unit': 'coder.service', 'witness.systemd.user_unit.uid': 65534 });
      expect(forged?.attributes['witness.agent']).not.toBe('coder');
    } finally {
      await sensor.close();
      await enricher.close();
      for (const p of [fake, deleg, root, `${top}/root-owned`, top]) try { rmdirSync(join(mount!, p)); } catch { /* still populated: leave it */ }
    }
  }, 60_000);

  it('exec of a binary that is renamed over right after: the record and session.json hash what ran', () => {
    // x renames another binary over its own path as its first act, long before
    // user space sees the exec record; the hash must still be x's
    const src = join(dir, 'renamer.c');
    writeFileSync(src, '#include <stdio.h>\n#include <unistd.h>\nint main(int c, char **v) { if (c > 1 && rename(v[1], v[0]) != 0) return 3; sleep(1); return 0; }\n');
    const x = join(dir, 'x');
    const cc = spawnSync('cc', ['-O2', '-o', x, src], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    chmodSync(x, 0o755);
    const ran = sha(x);
    const other = join(dir, 'other');
    copyFileSync('/bin/true', other);
    chmodSync(other, 0o755);
    const state = mkdtempSync(join(tmpdir(), 'witness-forge-state-'));
    const session = join(state, 'session');
    const r = spawnSync(process.execPath, [BIN, 'run', '--user', 'nobody', '--session-dir', session, '--out', join(state, 'ev.ndjson'), '--', x, other],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, WITNESS_STATE_DIR: state } });
    try {
      expect(r.status, r.stderr).toBe(0);
      expect(sha(x)).toBe(sha('/bin/true')); // the path now names another binary
      const exec = readFileSync(join(state, 'ev.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Envelope)
        .find((e) => e.event === 'process.exec' && e.attributes['process.executable.path'] === x);
      expect(exec?.attributes).toMatchObject({ 'witness.executable.sha256': ran, 'witness.executable.hash_status': 'ok' });
      const summary = JSON.parse(readFileSync(join(session, 'session.json'), 'utf8'));
      expect(summary.executable).toMatchObject({ path: x, sha256: ran });
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  }, 60_000);
});
