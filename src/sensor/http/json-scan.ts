/**
 * A streaming JSON scanner that keeps only what docs/privacy.md allows out
 * of a request or response body: the top-level "model" string, and the
 * token counts inside any "usage" / "usageMetadata" object. Everything else
 * is stepped over byte by byte and never kept. Constant memory (nesting past
 * MAX_DEPTH is still tracked, by count only); never throws; bytes that are
 * not JSON make it stop with a reason. Several documents in a row (an SSE
 * stream's data lines) are fed with reset() between them.
 */

export interface JsonFacts {
  model: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
}

const INPUT_KEYS = new Set(['input_tokens', 'prompt_tokens', 'promptTokenCount']);
const OUTPUT_KEYS = new Set(['output_tokens', 'completion_tokens', 'candidatesTokenCount']);
const USAGE_KEYS = new Set(['usage', 'usageMetadata']);
const MAX_DEPTH = 64;
const MAX_KEPT = 256; // bytes of a key or a kept scalar

type Mode = 'value' | 'key' | 'colon' | 'comma' | 'string' | 'scalar' | 'done' | 'error';

export class JsonScanner {
  readonly facts: JsonFacts = { model: null, inputTokens: null, outputTokens: null };
  error: string | null = null;
  private mode: Mode = 'value';
  private stack: string[] = []; // container kinds '{' / '[' (up to MAX_DEPTH), their keys alongside
  private keys: (string | null)[] = [];
  private deep = 0; // levels past MAX_DEPTH
  private usageDepth = 0; // levels inside a usage object (0: outside)
  private inKey = false;
  private escape = false;
  private buf = '';
  private keepBuf = false;

  reset(): void {
    this.mode = 'value';
    this.stack = [];
    this.keys = [];
    this.deep = 0;
    this.usageDepth = 0;
    this.error = null;
  }

  get complete(): boolean { return this.mode === 'done'; }

  feed(b: Uint8Array): void {
    for (let i = 0; i < b.length && this.mode !== 'error'; i++) this.byte(b[i]!);
  }

  private fail(why: string): void {
    this.mode = 'error';
    this.error = why;
  }

  private get depth(): number { return this.stack.length + this.deep; }

  private curKey(): string | null { return this.keys.length > 0 ? this.keys[this.keys.length - 1]! : null; }

  private byte(c: number): void {
    switch (this.mode) {
      case 'string': return this.strByte(c);
      case 'scalar':
        if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45 || (c >= 0x61 && c <= 0x7a)) {
          if (this.buf.length < MAX_KEPT) this.buf += String.fromCharCode(c);
          return;
        }
        this.endScalar();
        return this.byte(c);
      default: break;
    }
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return;
    switch (this.mode) {
      case 'done': return this.fail('bytes after the document');
      case 'colon':
        if (c !== 0x3a) return this.fail('expected ":"');
        this.mode = 'value';
        return;
      case 'comma': return this.afterValue(c);
      case 'key':
        if (c === 0x7d) return this.close(0x7d); // {}
        if (c !== 0x22) return this.fail('expected a key');
        this.inKey = true;
        this.startString(true);
        return;
      case 'value': return this.value(c);
      default: return;
    }
  }

  private value(c: number): void {
    if (c === 0x7b || c === 0x5b) {
      const usage = this.usageDepth > 0 ? this.usageDepth + 1 : USAGE_KEYS.has(this.curKey() ?? '') && this.inObject() ? 1 : 0;
      if (this.stack.length < MAX_DEPTH) {
        this.stack.push(c === 0x7b ? '{' : '[');
        this.keys.push(null);
      } else this.deep++;
      this.usageDepth = usage;
      this.mode = c === 0x7b ? 'key' : 'value';
      return;
    }
    if (c === 0x5d && this.top() === '[' && this.deep === 0) return this.close(0x5d); // []
    if (c === 0x22) {
      this.inKey = false;
      this.startString(this.depth === 1 && this.curKey() === 'model' && this.top() === '{');
      return;
    }
    if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x74 || c === 0x66 || c === 0x6e) {
      this.mode = 'scalar';
      this.buf = String.fromCharCode(c);
      return;
    }
    this.fail(`unexpected byte 0x${c.toString(16)}`);
  }

  private inObject(): boolean { return this.top() === '{' && this.deep === 0; }
  private top(): string | undefined { return this.stack[this.stack.length - 1]; }

  private startString(keep: boolean): void {
    this.mode = 'string';
    this.escape = false;
    this.buf = '';
    this.keepBuf = keep;
  }

  private strByte(c: number): void {
    if (this.escape) {
      this.escape = false;
      if (this.keepBuf && this.buf.length < MAX_KEPT) this.buf += '\\' + String.fromCharCode(c);
      return;
    }
    if (c === 0x5c) { this.escape = true; return; }
    if (c === 0x22) return this.endString();
    if (this.keepBuf && this.buf.length < MAX_KEPT) this.buf += String.fromCharCode(c);
  }

  private endString(): void {
    if (this.inKey) {
      this.inKey = false;
      if (this.deep === 0 && this.keys.length > 0) this.keys[this.keys.length - 1] = this.buf;
      this.mode = 'colon';
      return;
    }
    if (this.keepBuf) this.facts.model = decodeJsonText(this.buf);
    this.mode = 'comma';
    if (this.depth === 0) this.mode = 'done';
  }

  private endScalar(): void {
    const key = this.curKey();
    if (this.usageDepth > 0 && this.inObject() && key !== null && /^\d{1,15}$/.test(this.buf)) {
      if (INPUT_KEYS.has(key)) this.facts.inputTokens = Number(this.buf);
      if (OUTPUT_KEYS.has(key)) this.facts.outputTokens = Number(this.buf);
    }
    if (!/^(-?\d[\d.eE+-]*|true|false|null)$/.test(this.buf)) return this.fail('malformed literal');
    this.mode = this.depth === 0 ? 'done' : 'comma';
  }

  private afterValue(c: number): void {
    if (c === 0x3a && this.deep > 0) { // past the depth bound a key reads as a value
      this.mode = 'value';
      return;
    }
    if (c === 0x2c) {
      this.mode = this.top() === '{' && this.deep === 0 ? 'key' : 'value';
      if (this.deep > 0) this.mode = 'value'; // past the depth bound keys and values are both just stepped over
      return;
    }
    if (c === 0x7d || c === 0x5d) return this.close(c);
    this.fail('expected "," or a closing bracket');
  }

  private close(c: number): void {
    if (this.deep > 0) this.deep--;
    else {
      const t = this.stack.pop();
      this.keys.pop();
      if ((t === '{') !== (c === 0x7d)) return this.fail('mismatched bracket');
    }
    this.usageDepth = this.usageDepth > 0 ? this.usageDepth - 1 : 0;
    this.mode = this.depth === 0 ? 'done' : 'comma';
  }
}

/** The text of a kept JSON string (escapes resolved); a malformed escape keeps the raw text. */
function decodeJsonText(raw: string): string {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}
