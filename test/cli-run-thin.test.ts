import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `witness run` (bin/witness.js) loads the thin client's CommonJS bundle (dist/cli/run-thin.cjs,
 * scripts/bundle-thin.mjs) only while its manifest names every bundled module at the size and
 * mtime it was made from: a module rebuilt since (any tsc) sends it to main.js and the modules
 * themselves, so a stale bundle never runs. Both ways answer the same. The bundle's way loads no
 * ES module of ours (Node's ES module loader costs a resident call ~8 ms to start). Run in a copy
 * of bin/ and dist/ (mtimes kept), so the real ones are never touched.
 */
const root = path.resolve(import.meta.dirname, '..');
let pkg = '';
beforeAll(() => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'bundle-thin.mjs')], { stdio: 'ignore' });
  pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-run-thin-'));
  execFileSync('cp', ['-a', path.join(root, 'dist'), path.join(root, 'bin'), pkg]);
  // the guardian's binary, found from the package root (a run settles who the agent runs as first)
  fs.symlinkSync(path.join(root, 'build'), path.join(pkg, 'build'));
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'agent-witness', type: 'module' }));
  // ES modules as they resolve (written at once: the hooks' thread may not flush before the exit); CommonJS modules as they are in require's cache at the end
  fs.writeFileSync(path.join(pkg, 'hook.mjs'), 'import { writeSync } from "node:fs";\nexport async function resolve(s, c, next) { const r = await next(s, c); if (r.url.includes("/dist/")) writeSync(2, `M ${r.url}\\n`); return r; }\n');
  fs.writeFileSync(path.join(pkg, 'reg.cjs'), `require('node:module').register(${JSON.stringify(`file://${path.join(pkg, 'hook.mjs')}`)});\n` +
    "process.on('exit', () => { for (const f of Object.keys(require.cache)) if (f.includes('/dist/')) process.stderr.write(`C file://${f}\\n`); });\n");
}, 120_000);
afterAll(() => { if (pkg) fs.rmSync(pkg, { recursive: true, force: true }); });

/** A run refused at its flags: the run command's modules are loaded, nothing is spawned. */
function refused(args = ['--no-such-flag']): { esm: string[]; cjs: string[]; status: number | null; message: string } {
  const r = spawnSync(process.execPath, ['--require', path.join(pkg, 'reg.cjs'), path.join(pkg, 'bin', 'witness.js'), 'run', ...args, '--', '/bin/true'], {
    encoding: 'utf8', env: { ...process.env, WITNESS_RESIDENT_SOCKET: path.join(pkg, 'no-daemon.sock') },
  });
  const lines = r.stderr.split('\n');
  const loaded = (tag: string): string[] => [...new Set(lines.filter((l) => l.startsWith(tag)).map((l) => path.relative(path.join(pkg, 'dist'), new URL(l.slice(2)).pathname)))].sort();
  return { esm: loaded('M '), cjs: loaded('C '), status: r.status, message: lines.filter((l) => l !== '' && !/^[MC] /.test(l)).join('\n') };
}

describe('the thin client bundle', () => {
  it('is loaded while current: one CommonJS file instead of the client\'s modules, the same answer', () => {
    const fresh = refused();
    expect(fresh.cjs).toEqual(['cli/run-thin.cjs']);
    expect(fresh.esm).toEqual([]);
    expect(fresh.status).toBe(2);
    expect(fresh.message).toMatch(/^witness run: .*no-such-flag/);
    // --out's checks are an ES module the bundle loads on demand: its error is a WitnessError to the
    // bundle's own copy of errors.js too (src/errors.ts), so it is reported as the command's
    const badOut = ['--user', 'nobody', '--out', path.join(pkg, 'no-such-dir', 'events.ndjson')];
    const freshOut = refused(badOut);
    expect(freshOut.esm).toContain('ledger/safe-path.js');
    expect(freshOut.status).toBe(2);
    expect(freshOut.message).toMatch(/^witness run: .*no-such-dir/);
    // a module the bundle was made from, rebuilt since: main.js and the modules themselves, the same answer
    const util = path.join(pkg, 'dist', 'cli', 'run-util.js');
    const later = new Date(fs.statSync(util).mtimeMs + 5000);
    fs.utimesSync(util, later, later);
    const stale = refused();
    expect(stale.cjs).toEqual([]);
    expect(stale.esm).toContain('cli/main.js');
    expect(stale.esm).toContain('cli/run-entry.js');
    expect(stale.esm).toContain('cli/run-util.js');
    expect(stale.status).toBe(fresh.status);
    expect(stale.message).toBe(fresh.message);
    expect(refused(badOut)).toMatchObject({ status: freshOut.status, message: freshOut.message });
  });
});
