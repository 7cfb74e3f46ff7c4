import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root (where package.json, build/ and prebuilds/ are), from this module's own
 * place in dist/. A module of its own so the thin `witness run` client can name the guardian's
 * binary without loading the addon's loader and layout checks (src/sensor/native.ts).
 */
const here = dirname(fileURLToPath(import.meta.url));
/** dist/package-root.js (or src/), one level down; dist/cli/run-thin.cjs, the thin client's bundle (scripts/bundle-thin.mjs), two. */
export const PACKAGE_ROOT = existsSync(join(here, '..', 'package.json')) ? join(here, '..') : join(here, '..', '..');
