import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { WitnessError, isWitnessError } from '../errors.js';
import { resolvePulseOptions, type PulseOptionsInput } from '../pulse/options.js';
import { daemonConfigSchema, type DaemonConfig } from './schema.js';

/** Dotted path of a zod issue, with the offending key for unknown-key issues. */
function fieldOf(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') return [...path, issue.keys[0] ?? ''].join('.');
  return path.join('.') || '(root)';
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  return issue.message;
}

/** Line and column of a JSON.parse error position, for the message. */
function jsonErrorWhere(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return '';
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const col = before.length - before.lastIndexOf('\n');
  return ` (line ${line}, column ${col})`;
}

/**
 * Validates a parsed config object. Errors are WitnessError(E_CONFIG) whose
 * file is `source` and whose field is the dotted path (`export.otlp.endpoint`);
 * every problem is listed in the message, the first one named as the field.
 */
export function parseConfig(input: unknown, source: string): DaemonConfig {
  const parsed = daemonConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const first = issues[0]!;
    const more = issues.slice(1).map((i) => `; ${fieldOf(i)}: ${describe(i)}`).join('');
    throw new WitnessError('E_CONFIG', `${describe(first)}${more}`, { file: source, field: fieldOf(first) });
  }
  const config = parsed.data;
  try {
    resolvePulseOptions(config.pulse.options as PulseOptionsInput, source);
  } catch (err) {
    if (isWitnessError(err, 'E_CONFIG')) {
      const inner = err.field ? `pulse.options.${err.field}` : 'pulse.options';
      throw new WitnessError('E_CONFIG', err.message.replace(/^.*?: .*?: /, ''), { file: source, field: inner, cause: err });
    }
    throw err;
  }
  return config;
}

/** Reads and validates the config file at `path`. */
export function loadConfig(path: string): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new WitnessError('E_CONFIG', `cannot read config (${(cause as Error).message})`, { file: path, cause });
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (cause) {
    const msg = (cause as Error).message;
    throw new WitnessError('E_CONFIG', `not valid JSON: ${msg}${jsonErrorWhere(text, msg)}`, { file: path, field: '(syntax)', cause });
  }
  return parseConfig(input, path);
}
