import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Compiles src/ledger (and what it imports) to plain JS so tests can run it
 * in child processes they kill -9. Output lives under node_modules/.cache so
 * the compiled files still resolve the project's dependencies.
 */
export function buildLedgerForChildren(): string {
  const root = path.resolve(import.meta.dirname, '..', '..');
  const out = path.join(root, 'node_modules', '.cache', `witness-ledger-test-${process.pid}`);
  fs.rmSync(out, { recursive: true, force: true });
  try {
    execFileSync(process.execPath, [
      path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--outDir', out, '--rootDir', path.join(root, 'src'),
      '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
      '--strict', '--skipLibCheck', '--types', 'node', '--declaration', 'false', '--sourceMap', 'false',
      path.join(root, 'src', 'ledger', 'index.ts'), path.join(root, 'src', 'ledger', 'verify-worker.ts'), path.join(root, 'src', 'cli', 'verify.ts'),
    ], { stdio: 'inherit' });
  } catch (e) {
    fs.rmSync(out, { recursive: true, force: true });
    throw e;
  }
  return out;
}
