// What several benches prepare the same way: the real workloads' inputs (a
// git tree, its tarball, an `npm ci` directory) and the ring batches that
// `bench/replay.mjs capture` saved.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Under `tmp`: `tree` (a copy of node_modules, committed to git), `tree.tar`
 * (that tree) and `ci` (package.json + package-lock.json, for `npm ci
 * --offline`). Returns their paths.
 */
export function workloadInputs(root, tmp) {
  const tree = join(tmp, 'tree');
  cpSync(join(root, 'node_modules'), tree, { recursive: true });
  const git = (...a) => execFileSync('git', ['-C', tree, ...a], { stdio: 'ignore' });
  git('init', '-q');
  git('add', '-A');
  git('-c', 'user.email=b@b', '-c', 'user.name=b', 'commit', '-qm', 'tree');
  const tarball = join(tmp, 'tree.tar');
  execFileSync('tar', ['-cf', tarball, '-C', tmp, 'tree']);
  const ci = join(tmp, 'ci');
  mkdirSync(ci);
  cpSync(join(root, 'package.json'), join(ci, 'package.json'));
  cpSync(join(root, 'package-lock.json'), join(ci, 'package-lock.json'));
  return { tree, tarball, ci };
}

/** The batches of a capture file: each a u32 LE length, then that many bytes of one ring batch. */
export function readCapturedBatches(file) {
  const raw = readFileSync(file);
  const batches = [];
  for (let off = 0; off < raw.length;) {
    const len = raw.readUInt32LE(off);
    batches.push(raw.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return batches;
}
