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

export class WitnessError extends Error {
  readonly code: WitnessErrorCode;
  readonly file?: string;
  readonly field?: string;

  constructor(code: WitnessErrorCode, message: string, opts: { file?: string; field?: string; cause?: unknown } = {}) {
    const where = [opts.file, opts.field].filter(Boolean).join(': ');
    super(where ? `${where}: ${message}` : message, { cause: opts.cause });
    this.name = 'WitnessError';
    this.code = code;
    if (opts.file !== undefined) this.file = opts.file;
    if (opts.field !== undefined) this.field = opts.field;
  }
}

export function isWitnessError(e: unknown, code?: WitnessErrorCode): e is WitnessError {
  return e instanceof WitnessError && (code === undefined || e.code === code);
}
