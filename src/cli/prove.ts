import { parseArgs } from 'node:util';
import { WitnessError } from '../errors.js';
import { proveEvent } from '../ledger/event-proof.js';

const USAGE = 'usage: witness prove --event <seq|session-id:seq|daemon/<epoch>/<segment>:seq> STATE > e.tlog-proof\n' +
  '  A c2sp.org/tlog-proof for one ledger record: the witnessed continuity checkpoint, the inclusion\n' +
  '  proof of the ledger checkpoint that seals the record, and the record with its own proof as extra data.\n' +
  '  A bare seq is a host-ledger row (or a record of the session, when STATE is a session dir).\n';

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { event: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    throw new WitnessError('E_CONFIG', `${(e as Error).message}\n${USAGE}`, { file: 'witness prove', field: 'argv' });
  }
  if (parsed.values.help) { process.stderr.write(USAGE); return 0; }
  if (!parsed.values.event || parsed.positionals.length !== 1) throw new WitnessError('E_CONFIG', `--event and one STATE\n${USAGE}`, { file: 'witness prove', field: '--event' });
  process.stdout.write(proveEvent(parsed.positionals[0]!, parsed.values.event));
  return 0;
}
