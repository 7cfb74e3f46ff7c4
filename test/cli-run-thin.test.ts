import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `witness run` loads the thin client's bundle (dist/cli/run-thin.js, scripts/bundle-thin.mjs)
 * only while its manifest names every bundled module at the size and mtime it was made from: a
 * module rebuilt since (any tsc) sends it to the modules themselves, so a stale bundle never runs.
 * Both ways answer the same. Run in a copy of dist/ (mtimes kept), so the real one is never touched.
 */
const root = path.resolve(import.meta.dirname, '..');
let pkg = '';
beforeAll(() => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'bundle-thin.mjs')], { stdio: 'ignore' });
  pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-run-thin-'));
  execFileSync('cp', ['-a', path.join(root, 'dist'), path.join(pkg, 'dist')]);
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'agent-witness', type: 'module' }));
  fs.writeFileSync(path.join(pkg, 'hook.mjs'), 'export async function resolve(s, c, next) { const r = await next(s, c); if (r.url.includes("/dist/")) process.stderr.write(`M ${r.url}\\n`); return r; }\n');
  fs.writeFileSync(path.join(pkg, 'reg.mjs'), `import { register } from 'node:module'; register(${JSON.stringify(`file://${path.join(pkg, 'hook.mjs')}`)});\n`);
  fs.writeFileSync(path.join(pkg, 'witness.mjs'), "import { main } from './dist/cli/main.js'; process.exitCode = await main(process.argv.slice(2));\n");
}, 120_000);
afterAll(() => { if (pkg) fs.rmSync(pkg, { recursive: true, force: true }); });

/** A run refused at its flags: the run command's modules are loaded, nothing is spawned. */
function refused(): { modules: string[]; status: number | null; message: string } {
  const r = spawnSync(process.execPath, ['--import', path.join(pkg, 'reg.mjs'), path.join(pkg, 'witness.mjs'), 'run', '--no-such-flag', '--', '/bin/true'], { encoding: 'utf8' });
  const lines = r.stderr.split('\n');
  return {
    modules: [...new Set(lines.filter((l) => l.startsWith('M ')).map((l) => path.relative(path.join(pkg, 'dist'), new URL(l.slice(2)).pathname)))].sort(),
    status: r.status,
    message: lines.filter((l) => l !== '' && !l.startsWith('M ')).join('\n'),
  };
}

describe('the thin client bundle', () => {
  it('is loaded while current: one module instead of the client\'s modules, the same answer', () => {
    const fresh = refused();
    expect(fresh.modules).toEqual(['cli/main.js', 'cli/run-thin.js', 'errors.js']);
    expect(fresh.status).toBe(2);
    expect(fresh.message).toMatch(/^witness run: .*no-such-flag/);
    // a module the bundle was made from, rebuilt since: the modules themselves, the same answer
    const util = path.join(pkg, 'dist', 'cli', 'run-util.js');
    const later = new Date(fs.statSync(util).mtimeMs + 5000);
    fs.utimesSync(util, later, later);
    const stale = refused();
    expect(stale.modules).toContain('cli/run-entry.js');
    expect(stale.modules).toContain('cli/run-util.js');
    expect(stale.modules).not.toContain('cli/run-thin.js');
    expect(stale.status).toBe(fresh.status);
    expect(stale.message).toBe(fresh.message);
  });
});
