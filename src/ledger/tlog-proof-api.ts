/** The public `tlogProof` namespace: c2sp.org/tlog-proof@v1 format and parse. */
export { format, parse, TLOG_PROOF_HEADER, type TlogProof } from './tlog-proof.js';
