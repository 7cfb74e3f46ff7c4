import { WitnessError } from '../errors.js';
import { writeKeyPair } from '../ledger/keys.js';

/** `witness keygen --out PREFIX`: PREFIX.key (0600, root-only) and PREFIX.pub (shareable). */
export async function run(argv: string[]): Promise<number> {
  let prefix: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') prefix = argv[++i];
    else if (a.startsWith('--out=')) prefix = a.slice(6);
    else if (a === '-h' || a === '--help') { process.stderr.write('usage: witness keygen --out PREFIX\n'); return 0; }
    else throw new WitnessError('E_CONFIG', `unknown argument '${a}'`, { field: 'argv' });
  }
  if (!prefix) throw new WitnessError('E_CONFIG', 'missing --out PREFIX', { field: '--out' });
  const keys = writeKeyPair(prefix);
  process.stdout.write(`${keys.privatePath}\n${keys.publicPath}\nkey id ${keys.keyId}\n`);
  return 0;
}
