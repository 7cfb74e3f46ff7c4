/**
 * agent-witness package entry. Namespaces are added here by each subsystem.
 */
export * as merkle from './ledger/merkle-api.js';
export * as dsse from './ledger/dsse-api.js';
export * as note from './ledger/note-api.js';
export * as checkpoint from './ledger/tlog-checkpoint-api.js';
export * as cosignature from './ledger/cosignature-api.js';
export * as tlogProof from './ledger/tlog-proof-api.js';
