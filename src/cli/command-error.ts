import { isWitnessError } from '../errors.js';

/**
 * A command's typed error as the user sees it: one line on stderr, named by the command, and its
 * exit code (1: a ledger failed verification; 2: anything else the user can fix). Other errors
 * are bugs and are thrown on, with their stack.
 */
export function reportCommandError(name: string, err: unknown): number {
  if (!isWitnessError(err)) throw err;
  // errors that name the command as their file already start with it: say it once
  const prefix = `witness ${name}: `;
  process.stderr.write(`${err.message.startsWith(prefix) ? '' : prefix}${err.message}\n`);
  return err.code === 'E_LEDGER' ? 1 : 2;
}
