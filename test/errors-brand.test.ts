import { describe, expect, it } from 'vitest';
import { isWitnessError, WitnessError } from '../src/errors.js';

/**
 * `witness run`'s thin client is a CommonJS bundle with its own copy of errors.js
 * (scripts/bundle-thin.mjs); the ES modules it loads later (its own sensor, the ledger) have
 * theirs. An error from either copy is a WitnessError to both: main's one-line report and exit
 * code, the ledger's outage test (`instanceof WitnessError`), depend on it.
 */
describe('WitnessError across copies of its module', () => {
  it('is recognised by instanceof and isWitnessError whichever copy made it', async () => {
    const other = (await import('../src/errors.ts?another-copy')) as typeof import('../src/errors.js');
    expect(other.WitnessError).not.toBe(WitnessError);
    const theirs = new other.WitnessError('E_LEDGER', 'bad', { file: 'f' });
    const ours = new WitnessError('E_CONFIG', 'worse');
    expect(theirs instanceof WitnessError).toBe(true);
    expect(ours instanceof other.WitnessError).toBe(true);
    expect(isWitnessError(theirs, 'E_LEDGER')).toBe(true);
    expect(other.isWitnessError(ours, 'E_CONFIG')).toBe(true);
    expect(theirs.message).toBe('f: bad');
  });

  it('is not claimed by anything else', () => {
    const plain = Object.assign(new Error('x'), { name: 'WitnessError', code: 'E_CONFIG' });
    expect(plain instanceof WitnessError).toBe(false);
    expect(isWitnessError(plain)).toBe(false);
    expect(null instanceof WitnessError).toBe(false);
    expect(isWitnessError('E_CONFIG')).toBe(false);
  });
});
