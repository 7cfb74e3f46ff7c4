import { WitnessError } from '../errors.js';

export interface ParsedArgs {
  flags: Record<string, string | boolean>;
  positionals: string[];
  /** everything after `--` */
  rest: string[];
}

/**
 * Minimal flag parser: `--name value`, `--name=value`, boolean `--name`.
 * Unknown flags are an error that names the flag (no silent typos).
 */
export function parseArgs(argv: string[], spec: { booleans?: string[]; strings?: string[] }, command: string): ParsedArgs {
  const booleans = new Set(spec.booleans ?? []);
  const strings = new Set(spec.strings ?? []);
  const flags: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { flags, positionals, rest: argv.slice(i + 1) };
    if (!a.startsWith('--')) { positionals.push(a); continue; }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (booleans.has(name)) { flags[name] = true; continue; }
    if (!strings.has(name)) throw new WitnessError('E_CONFIG', `unknown option --${name}`, { file: `witness ${command}`, field: `--${name}` });
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new WitnessError('E_CONFIG', `--${name} needs a value`, { file: `witness ${command}`, field: `--${name}` });
    flags[name] = value;
  }
  return { flags, positionals, rest: [] };
}

export function str(flags: ParsedArgs['flags'], name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}
