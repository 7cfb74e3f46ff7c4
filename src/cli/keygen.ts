import { parseArgs } from 'node:util';
import { WitnessError } from '../errors.js';
import { writeKeyPair } from '../ledger/keys.js';
import { ALG_COSIGNATURE_V1, ALG_ED25519 } from '../ledger/note-keys.js';
import { defaultOrigin, vkeyPathOf, writeVkey } from '../ledger/note-key-files.js';
import { resolveStateDir } from '../ledger/state.js';

const USAGE = 'usage: witness keygen --out PREFIX [--name NAME] [--cosigner]\n' +
  '  PREFIX.key (0600), PREFIX.pub, and PREFIX.vkey: the signed-note verifier key named NAME,\n' +
  '  type 0x01 (a log; NAME is its origin, default <host-id>.agent-witness/<state dir>) or,\n' +
  '  with --cosigner, type 0x04 (a witness; NAME required).\n';

/** `witness keygen`: an Ed25519 key pair plus its C2SP verifier key. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { out: { type: 'string' }, name: { type: 'string' }, cosigner: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (e) {
    throw new WitnessError('E_CONFIG', (e as Error).message, { file: 'witness keygen', field: 'argv' });
  }
  if (values.help) { process.stderr.write(USAGE); return 0; }
  if (!values.out) throw new WitnessError('E_CONFIG', 'missing --out PREFIX', { file: 'witness keygen', field: '--out' });
  if (values.cosigner && !values.name) throw new WitnessError('E_CONFIG', 'a cosigner needs --name (e.g. witness.example.org/w1)', { file: 'witness keygen', field: '--name' });
  const name = values.name ?? defaultOrigin(resolveStateDir());
  const keys = writeKeyPair(values.out);
  const vkey = writeVkey(keys.privatePath, name, values.cosigner ? ALG_COSIGNATURE_V1 : ALG_ED25519);
  process.stdout.write(`${keys.privatePath}\n${keys.publicPath}\n${vkeyPathOf(keys.privatePath)}\nkey id ${keys.keyId}\nvkey ${vkey}\n`);
  return 0;
}
