/** The public `note` namespace: c2sp.org/signed-note sign and open. */
export { sign, open } from './note.js';
export { parseVerifierKey, parseSignerKey, encodeVerifierKey, encodeSignerKey, ALG_ED25519, ALG_COSIGNATURE_V1 } from './note-keys.js';
