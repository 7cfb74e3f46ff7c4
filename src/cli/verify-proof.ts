import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { WitnessError } from '../errors.js';
import { verifyEventProof } from '../ledger/event-proof.js';
import { loadVerifierKey } from '../ledger/note-key-files.js';

const USAGE = 'usage: witness verify-proof --pubkey LOG.vkey --witness W.vkey [--witness ...] [--json] FILE.tlog-proof\n';

/** Offline: VERIFIED (exit 0) with the event on stdout, or MISMATCH and the reason (exit 1). */
export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: {
      pubkey: { type: 'string' }, witness: { type: 'string', multiple: true }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    } });
  } catch (e) {
    throw new WitnessError('E_CONFIG', `${(e as Error).message}\n${USAGE}`, { file: 'witness verify-proof', field: 'argv' });
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stderr.write(USAGE); return 0; }
  if (!values.pubkey || positionals.length !== 1) throw new WitnessError('E_CONFIG', `--pubkey and one FILE\n${USAGE}`, { file: 'witness verify-proof', field: '--pubkey' });
  const logKey = loadVerifierKey(values.pubkey, '--pubkey');
  const witnesses = (values.witness ?? []).map((f) => loadVerifierKey(f, '--witness'));
  if (witnesses.length === 0) process.stderr.write('WARNING: no --witness given: the proof shows the log signed it, not that anyone else saw it.\n');
  let text: string;
  try { text = fs.readFileSync(positionals[0]!, 'utf8'); } catch (cause) {
    throw new WitnessError('E_CONFIG', `cannot read proof (${(cause as Error).message})`, { file: positionals[0]!, field: 'FILE', cause });
  }
  try {
    const r = verifyEventProof(text, logKey, witnesses);
    if (values.json) process.stdout.write(`${JSON.stringify({ result: 'VERIFIED', ...r })}\n`);
    else process.stdout.write(`VERIFIED ${r.log} ${r.logId} seq ${r.seq} in ${r.origin} size ${r.size} leaf ${r.index}; cosigned by ${r.witnesses.map((w) => `${w.name} at ${new Date(w.timestamp * 1000).toISOString()}`).join(', ') || 'nobody'}\n${r.event}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof WitnessError)) throw e;
    process.stdout.write(values.json ? `${JSON.stringify({ result: 'MISMATCH', reason: e.message })}\n` : `MISMATCH ${e.message}\n`);
    return 1;
  }
}
