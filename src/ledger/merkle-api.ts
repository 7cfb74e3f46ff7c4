/** The public `merkle` namespace: RFC 6962 / RFC 9162 over raw data. */
export { leafHash, rootHash, inclusionProof, consistencyProof, verifyInclusion, verifyConsistency } from './merkle.js';
