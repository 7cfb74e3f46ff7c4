/**
 * Typed errors. Every error a user can see carries a stable `code` and, where
 * it came from input, the file and field that were wrong, so the message can
 * say exactly what to fix.
 */
export type WitnessErrorCode =
  | 'E_CONFIG'        // malformed config / manifest / CLI arguments
  | 'E_WIRE'          // malformed kernel wire record
  | 'E_LAYOUT'        // TS decoder disagrees with bpf/events.h
  | 'E_PRIVILEGE'     // not root / missing capability
  | 'E_KERNEL'        // kernel lacks BTF, tracefs, program rejected
  | 'E_NATIVE'        // addon missing or failed to load
  | 'E_LEDGER'        // ledger corruption / verification failure
  | 'E_STORE'         // embedded store corruption
  | 'E_PULSE'         // pulse engine invariant broken
  | 'E_IO';           // filesystem failures

/**
 * The class's brand, in the process-wide symbol registry: `witness run`'s thin client is a
 * CommonJS bundle with its own copy of this module (scripts/bundle-thin.mjs), and what it
 * throws must still be a WitnessError to the ES modules it loads later (its own sensor, the
 * ledger), and theirs to it.
 */
const BRAND = Symbol.for('agent-witness.WitnessError');

export class WitnessError extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  readonly code: WitnessErrorCode;
  readonly file?: string;
  readonly field?: string;

  constructor(code: WitnessErrorCode, message: string, opts: { file?: string; field?: string; cause?: unknown } = {}) {
    const where = [opts.file, opts.field].filter(Boolean).join(': ');
    super(where ? `${where}: ${message}` : message, { cause: opts.cause });
    this.name = 'WitnessError';
    Object.defineProperty(this, BRAND, { value: true });
    this.code = code;
    if (opts.file !== undefined) this.file = opts.file;
    if (opts.field !== undefined) this.field = opts.field;
  }
}

export function isWitnessError(e: unknown, code?: WitnessErrorCode): e is WitnessError {
  return e instanceof WitnessError && (code === undefined || e.code === code);
}
