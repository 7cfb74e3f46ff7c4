import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root (where package.json, build/ and prebuilds/ are), from this module's own
 * place in dist/. A module of its own so the thin `witness run` client can name the guardian's
 * binary without loading the addon's loader and layout checks (src/sensor/native.ts).
 */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
