import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeKeyPair } from '../src/ledger/index.js';
import { newKey, tempDir, writeSession } from './helpers/ledger-fixtures.js';
import { rootSuite } from './helpers/root.js';

const { skip } = rootSuite('the ledger permissions suite');
const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

/** Runs a shell command as `nobody` with no supplementary groups. */
function asNobody(cmd: string): { status: number | null; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '/bin/sh', '-c', cmd], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe.skipIf(skip)('permissions: a non-root user cannot read or append', () => {
  it('nobody can neither read nor append the ledger, the session, or the signing key', async () => {
    const outer = tempDir('perm');
    roots.push(outer);
    // Open the outer dir up so only the ledger's own modes stand between nobody and the files.
    fs.chmodSync(outer, 0o755);
    const stateDir = path.join(outer, 'state');
    const keys = writeKeyPair(path.join(outer, 'signer'));
    const dir = await writeSession({ stateDir, signKey: newKey() }, 5);
    const events = path.join(dir, 'events.ndjson');
    const ledger = path.join(stateDir, 'ledger.ndjson');

    // Sanity: nobody can run commands and read a world-readable file, so failures below are permissions.
    expect(asNobody(`cat ${keys.publicPath} > /dev/null`).status).toBe(0);

    for (const target of [events, ledger, path.join(dir, 'session.json'), keys.privatePath]) {
      const read = asNobody(`cat '${target}' > /dev/null`);
      expect(read.status, `read ${target}`).not.toBe(0);
      expect(read.stderr).toMatch(/Permission denied/);
      const append = asNobody(`echo forged >> '${target}'`);
      expect(append.status, `append ${target}`).not.toBe(0);
    }
    expect(asNobody(`ls '${stateDir}'`).status).not.toBe(0);
    expect(asNobody(`touch '${stateDir}/ledger.lock'`).status).not.toBe(0);

    // Even with the directories opened up, the files' own 0600 modes hold.
    fs.chmodSync(stateDir, 0o755);
    fs.chmodSync(path.join(stateDir, 'sessions'), 0o755);
    fs.chmodSync(dir, 0o755);
    for (const target of [events, ledger, path.join(dir, 'checkpoints.ndjson')]) {
      expect(asNobody(`cat '${target}' > /dev/null`).status, `read ${target}`).not.toBe(0);
      expect(asNobody(`echo forged >> '${target}'`).status, `append ${target}`).not.toBe(0);
    }
    expect(fs.readFileSync(events, 'utf8')).not.toMatch(/forged/);
    expect(fs.readFileSync(ledger, 'utf8')).not.toMatch(/forged/);
  });
});
