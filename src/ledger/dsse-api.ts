/** The public `dsse` namespace: DSSE v1 pre-authentication encoding, Ed25519 sign and verify. */
export { pae, sign, verify, type DsseEnvelope, type DsseSignature } from './dsse.js';
