/**
 * agent-witness package entry. Namespaces are added here by each subsystem.
 */
export * as merkle from './ledger/merkle-api.js';
export * as dsse from './ledger/dsse-api.js';
