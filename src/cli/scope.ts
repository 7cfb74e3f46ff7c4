import { WitnessError } from '../errors.js';
import { scopeRequest } from '../scope/client.js';
import { scopeSocketPath } from '../scope/protocol.js';
import { parseArgs, str } from './args.js';

const USAGE = `usage:
  witness scope open --run R --session S --tool-call T [--tool-name N] (--pid P | --cgroup PATH) [--ttl SECONDS] [--socket PATH]
  witness scope close --tool-call T [--run R] [--socket PATH]
  witness scope list [--socket PATH]`;

function need(flags: Record<string, string | boolean>, name: string): string {
  const v = str(flags, name);
  if (v === undefined) throw new WitnessError('E_CONFIG', `--${name} is required\n${USAGE}`, { file: 'witness scope', field: `--${name}` });
  return v;
}

function positiveInt(text: string, field: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new WitnessError('E_CONFIG', `must be a positive whole number, got '${text}'`, { file: 'witness scope', field });
  return Number(text);
}

/** `witness scope open|close|list`: talks to the daemon's scope socket (docs/scopes.md). */
export async function run(argv: string[]): Promise<number> {
  const [op, ...rest] = argv;
  const { flags } = parseArgs(rest, { strings: ['run', 'session', 'tool-call', 'tool-name', 'pid', 'cgroup', 'ttl', 'socket'] }, 'scope');
  const socket = str(flags, 'socket') ?? scopeSocketPath();
  let request: Record<string, unknown>;
  switch (op) {
    case 'open': {
      const pid = str(flags, 'pid');
      const cgroup = str(flags, 'cgroup');
      if ((pid === undefined) === (cgroup === undefined)) throw new WitnessError('E_CONFIG', `give exactly one of --pid or --cgroup\n${USAGE}`, { file: 'witness scope', field: '--pid' });
      const ttl = str(flags, 'ttl');
      request = {
        op: 'open', run_id: need(flags, 'run'), session_id: need(flags, 'session'), tool_call_id: need(flags, 'tool-call'),
        ...(str(flags, 'tool-name') !== undefined ? { tool_name: str(flags, 'tool-name') } : {}),
        ...(pid !== undefined ? { pid: positiveInt(pid, '--pid') } : { cgroup }),
        ...(ttl !== undefined ? { ttl_seconds: positiveInt(ttl, '--ttl') } : {}),
      };
      break;
    }
    case 'close':
      request = { op: 'close', tool_call_id: need(flags, 'tool-call'), ...(str(flags, 'run') !== undefined ? { run_id: str(flags, 'run') } : {}) };
      break;
    case 'list':
      request = { op: 'list' };
      break;
    default:
      throw new WitnessError('E_CONFIG', `unknown subcommand '${op ?? ''}'\n${USAGE}`, { file: 'witness scope', field: 'open|close|list' });
  }
  const res = await scopeRequest(socket, request);
  if (!res.ok) throw new WitnessError('E_CONFIG', `the daemon refused: ${res.error.message}`, { file: 'witness scope' });
  process.stdout.write(`${JSON.stringify(res.scope ?? res.scopes ?? {})}\n`);
  return 0;
}
