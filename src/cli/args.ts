import { parseArgs as parseNodeArgs } from 'node:util';
import { WitnessError } from '../errors.js';

export interface ParsedArgs {
  flags: Record<string, string | boolean>;
  positionals: string[];
  /** everything after `--` */
  rest: string[];
}

interface NodeArgError extends Error { code?: string }

/**
 * node:util parseArgs, strict, with the command's errors typed: `--name value`,
 * `--name=value`, boolean `--name`. Unknown flags are an error that names the flag
 * (no silent typos). Everything after the first `--` is `rest`, untouched: it is the
 * traced command's own argv, whose flags are none of ours.
 */
export function parseArgs(argv: string[], spec: { booleans?: string[]; strings?: string[] }, command: string): ParsedArgs {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string }> = {};
  for (const b of spec.booleans ?? []) options[b] = b === 'help' ? { type: 'boolean', short: 'h' } : { type: 'boolean' };
  for (const s of spec.strings ?? []) options[s] = { type: 'string' };
  const end = argv.indexOf('--');
  const ours = end < 0 ? argv : argv.slice(0, end);
  try {
    const { values, positionals } = parseNodeArgs({ args: ours, options, allowPositionals: true, strict: true });
    const flags: Record<string, string | boolean> = {};
    for (const [k, v] of Object.entries(values)) if (typeof v === 'string' || typeof v === 'boolean') flags[k] = v;
    return { flags, positionals, rest: end < 0 ? [] : argv.slice(end + 1) };
  } catch (e) {
    const err = e as NodeArgError;
    const name = /'(-{1,2}[^'\s]+)/.exec(err.message)?.[1] ?? 'argv';
    const reason = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 'unknown option'
      : err.code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ? err.message
        : /does not take an argument/.test(err.message) ? 'takes no value'
          : `needs a value (write ${name}=VALUE for one that starts with '-')`;
    throw new WitnessError('E_CONFIG', reason, { file: `witness ${command}`, field: name });
  }
}

export function str(flags: ParsedArgs['flags'], name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}
