/**
 * The static Huffman code of HPACK (RFC 7541 Appendix B), decoding only.
 * The code is canonical (codes of one length are consecutive, in symbol
 * order, each length starting where the previous one ended, shifted), so
 * the code lengths alone define it: the table below is the Appendix's
 * "len in bits" column, symbols 0..255 and EOS (256).
 */
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0..15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16..31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' '..'/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0'..'?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@'..'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P'..'_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`'..'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p'..127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..255
  30, // EOS
];

export const EOS = 256;
const MAX_LEN = 30;

/** Per length: the first code, how many codes, and where their symbols start in `sorted`. */
const first = new Array<number>(MAX_LEN + 2).fill(0);
const count = new Array<number>(MAX_LEN + 2).fill(0);
const offset = new Array<number>(MAX_LEN + 2).fill(0);
const sorted: number[] = [];
for (let len = 1; len <= MAX_LEN; len++) {
  offset[len] = sorted.length;
  for (let sym = 0; sym < LENGTHS.length; sym++) if (LENGTHS[sym] === len) sorted.push(sym);
  count[len] = sorted.length - offset[len]!;
}
for (let len = 1, code = 0; len <= MAX_LEN; len++) {
  code = (code + count[len - 1]!) << 1;
  first[len] = code;
}
first[1] = 0;

/** The code of a symbol as [code, length]: what an encoder writes (tests build inputs with it). */
export function huffmanCode(sym: number): [number, number] {
  const len = LENGTHS[sym]!;
  return [first[len]! + sorted.indexOf(sym, offset[len]) - offset[len]!, len];
}

export type HuffmanResult = { ok: true; bytes: Uint8Array } | { ok: false; reason: 'huffman' };

/**
 * Decodes a Huffman-coded string. RFC 7541 §5.2 errors (EOS inside the
 * string; padding longer than 7 bits or not all ones) are `huffman`.
 * Output is bounded by the input (at most 8/5 symbols per byte).
 */
export function huffmanDecode(input: Uint8Array): HuffmanResult {
  const out = new Uint8Array(Math.ceil((input.length * 8) / 5));
  let n = 0;
  let code = 0;
  let len = 0;
  let ones = true; // the bits of the current partial code are all ones (valid padding so far)
  for (let i = 0; i < input.length; i++) {
    const byte = input[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      code = code * 2 + bit;
      len++;
      ones &&= bit === 1;
      const k = code - first[len]!;
      if (k >= 0 && k < count[len]!) {
        const sym = sorted[offset[len]! + k]!;
        if (sym === EOS) return { ok: false, reason: 'huffman' };
        out[n++] = sym;
        code = 0;
        len = 0;
        ones = true;
      } else if (len >= MAX_LEN) {
        return { ok: false, reason: 'huffman' };
      }
    }
  }
  if (len > 7 || !ones) return { ok: false, reason: 'huffman' };
  return { ok: true, bytes: out.subarray(0, n) };
}
