/** The public `cosignature` namespace: Ed25519 cosignature/v1 sign and verify. */
export { sign, verify } from './cosignature.js';
