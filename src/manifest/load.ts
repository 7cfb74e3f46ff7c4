import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { WitnessError } from '../errors.js';
import { agentSchema, egressSchema, manifestSchema, matchRuleSchema, type Manifest } from './schema.js';

/**
 * Loads and validates agents.json. Every error names the file, the JSON path
 * of the offending value ($.agents[1].egress.cidrs[0]) and what to write
 * instead; all problems are listed at once so one edit fixes them all.
 */

export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(String(p)) ? `.${String(p)}` : `[${JSON.stringify(String(p))}]`;
  return out;
}

/** The keys an object at `path` may have, so an unknown key's error can list them. */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  const shape = path.length === 0 ? manifestSchema.shape
    : path.length === 2 && path[0] === 'agents' ? agentSchema.shape
      : path.length === 4 && path[2] === 'match' ? matchRuleSchema.shape
        : path.length === 3 && path[2] === 'egress' ? egressSchema.shape
          : null;
  return shape ? Object.keys(shape) : [];
}

function describe(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeys(issue.path);
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}; ` +
        (allowed.length > 0 ? `allowed here: ${allowed.join(', ')}` : 'remove or rename it (docs/manifest.md lists the keys)');
    }
    case 'invalid_type': {
      const what = issue.expected === 'array' || issue.expected === 'object' ? `an ${issue.expected}` : `a ${issue.expected}`;
      return `${issue.message.replace(/^Invalid input: /, '')}; write ${what} here`;
    }
    default:
      return issue.message;
  }
}

export function parseManifest(text: string, file: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new WitnessError('E_CONFIG', `not valid JSON (${(err as Error).message}); fix the syntax`, { file, field: '$', cause: err });
  }
  const parsed = manifestSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ field: jsonPath(i.path), text: describe(i) }));
  const [first, ...more] = issues;
  const extra = more.length > 0 ? `; also ${more.map((i) => `${i.field}: ${i.text}`).join('; ')}` : '';
  throw new WitnessError('E_CONFIG', `${first!.text}${extra}`, { file, field: first!.field });
}

export function loadManifest(file: string): Manifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new WitnessError('E_CONFIG', `cannot read the agent manifest (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file, cause: err });
  }
  return parseManifest(text, file);
}
