import { reportCommandError } from './command-error.js';
import { run } from './run-entry.js';

/**
 * `witness run`'s own entry, for the thin client's CommonJS bundle (scripts/bundle-thin.mjs,
 * loaded by bin/witness.js): the same answers as `main(['run', ...])`, without main.js and so
 * without Node's ES module loader, whose start alone costs a resident call ~8 ms.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv.slice(1));
  } catch (err) {
    return reportCommandError('run', err);
  }
}
