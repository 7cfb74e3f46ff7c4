#!/usr/bin/env node
// The thin `witness run` client (dist/cli/run-entry.js and the small modules it imports
// statically, docs/resident.md) as one file, dist/cli/run-thin.js: Node's ESM loader costs ~0.5 ms a
// module, ~7 ms of every resident call. main.js loads it only while dist/cli/run-thin.json still
// names every bundled module at the size and mtime it was bundled from (any tsc run since
// rewrites them), so a stale bundle never runs; without rolldown (a devDependency) there is
// no bundle and main.js imports the modules. Dynamic imports stay separate modules.
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'cli', 'run-thin.js');
const manifest = join(dist, 'cli', 'run-thin.json');
rmSync(manifest, { force: true });
rmSync(out, { force: true });
let rolldown;
try { ({ rolldown } = await import('rolldown')); } catch { console.log('bundle-thin: rolldown not installed; witness run loads its modules one by one'); process.exit(0); }
const bundled = new Set();
const b = await rolldown({
  input: join(dist, 'cli', 'run-entry.js'),
  platform: 'node',
  logLevel: 'warn',
  // builtins, packages and what the client loads only on some paths (its own sensor, --out, --witness, a linger, the logger)
  external: (id, importer, isResolved) => id.startsWith('node:') || (importer !== undefined && !id.startsWith('.') && !id.startsWith('/')),
  plugins: [{
    name: 'dynamic-imports-stay-modules',
    // errors.js stays one module: main.js and whatever the client loads later test `instanceof WitnessError` on its one class
    resolveId(spec, importer) {
      if (importer !== undefined && spec.endsWith('/errors.js') && join(dirname(importer), spec) === join(dist, 'errors.js')) {
        if (dirname(dirname(importer)) !== dist) throw new Error(`bundle-thin: ${importer} is not one level under dist/`);
        return { id: '../errors.js', external: true };
      }
      return null;
    },
    resolveDynamicImport(spec, importer) {
      // kept as written: every importer that loads a module dynamically sits in dist/cli/, as the bundle does
      if (dirname(importer) !== join(dist, 'cli')) throw new Error(`bundle-thin: ${importer} imports ${String(spec)} dynamically from outside dist/cli/`);
      return { id: String(spec), external: true };
    },
    load(id) { if (id.startsWith(dist)) bundled.add(id); return null; },
  }],
});
await b.write({ file: out, format: 'esm', codeSplitting: false });
const files = [...bundled].sort().map((f) => { const st = statSync(f); return [relative(dist, f), st.size, st.mtimeMs]; });
writeFileSync(manifest, `${JSON.stringify({ bundled: files })}\n`);
console.log(`bundle-thin: dist/cli/run-thin.js from ${files.length} modules`);
