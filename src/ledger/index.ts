/**
 * The ledger: tamper-evident, signed, append-only evidence. See docs/ledger.md.
 */
export { SessionWriter, type SessionWriterOptions, type SessionSummary, type ExecutableIdentity } from './session.js';
export { DaemonWriter, type DaemonWriterOptions } from './daemon.js';
export { LedgerLog, type LedgerLogOptions } from './log-writer.js';
export { appendGlobalRow, type GlobalRow, type SessionRow, type DaemonSegmentRow } from './global.js';
export { verifyPath, type VerifyOptions, type VerifyReport } from './verify.js';
export type { Failure } from './verify-checkpoints.js';
export { writeKeyPair, loadPrivateKey, loadPublicKey, keyIdOf, rawPublicKey } from './keys.js';
export { resolveStateDir, DEFAULT_STATE_DIR } from './state.js';
export { filesystemRoot, type TrackedRoot } from './fs-tree.js';
export * as merkle from './merkle-api.js';
export * as dsse from './dsse-api.js';
