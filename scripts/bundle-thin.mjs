#!/usr/bin/env node
// The thin `witness run` client (dist/cli/run-main.js and the small modules it imports
// statically, docs/resident.md) as one CommonJS file, dist/cli/run-thin.cjs: Node's ES module
// loader costs ~8 ms to start and ~0.5 ms a module, of every resident call. bin/witness.js
// loads it only while dist/cli/run-thin.json still names every bundled module at the size and
// mtime it was bundled from (any tsc run since rewrites them), so a stale bundle never runs;
// without rolldown (a devDependency) there is no bundle and bin/witness.js goes through main.js.
// Dynamic imports stay separate (ES) modules. The bundle has its own copy of errors.js; a
// WitnessError is one to either copy (instanceof goes by a registered symbol, src/errors.ts).
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'cli', 'run-thin.cjs');
const earlier = join(dist, 'cli', 'run-thin.js'); // the ES module bundle of before
const manifest = join(dist, 'cli', 'run-thin.json');
rmSync(manifest, { force: true });
rmSync(out, { force: true });
rmSync(earlier, { force: true });
let rolldown;
try { ({ rolldown } = await import('rolldown')); } catch { console.log('bundle-thin: rolldown not installed; witness run loads its modules one by one'); process.exit(0); }
const bundled = new Set();
const b = await rolldown({
  input: join(dist, 'cli', 'run-main.js'),
  platform: 'node',
  logLevel: 'warn',
  // builtins, packages and what the client loads only on some paths (its own sensor, --out, --witness, a linger, the logger)
  external: (id, importer, isResolved) => id.startsWith('node:') || (importer !== undefined && !id.startsWith('.') && !id.startsWith('/')),
  plugins: [{
    name: 'dynamic-imports-stay-modules',
    resolveDynamicImport(spec, importer) {
      // kept as written: every importer that loads a module dynamically sits in dist/cli/, as the bundle does
      if (dirname(importer) !== join(dist, 'cli')) throw new Error(`bundle-thin: ${importer} imports ${String(spec)} dynamically from outside dist/cli/`);
      return { id: String(spec), external: true };
    },
    load(id) { if (id.startsWith(dist)) bundled.add(id); return null; },
  }],
});
await b.write({ file: out, format: 'cjs', codeSplitting: false });
const files = [...bundled].sort().map((f) => { const st = statSync(f); return [relative(dist, f), st.size, st.mtimeMs]; });
writeFileSync(manifest, `${JSON.stringify({ bundled: files })}\n`);
console.log(`bundle-thin: dist/cli/run-thin.cjs from ${files.length} modules`);
