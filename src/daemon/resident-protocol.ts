import { WitnessError } from '../errors.js';

/**
 * The resident socket's wire format (docs/resident.md): `witness run` asks
 * the running daemon to record the tree it is about to start. The daemon's
 * sensor, already loaded and attached, observes it, and the daemon runs the
 * session itself (src/daemon/resident-run.ts: decode, attribution, NDJSON,
 * the session ledger, exactly the code of a standalone run), so the
 * `witness run` process loads nothing heavy: it spawns the guardian, relays
 * the output and returns the exit code.
 *
 * Frames both ways: `u32 length` (little-endian, of what follows), `u8 kind`,
 * then `length - 1` payload bytes.
 *   kind 1 (JSON):   one UTF-8 JSON object (the requests and answers below)
 *   kind 3 (OUTPUT): bytes of the run's output (NDJSON or human lines), daemon → client only
 *
 * client → daemon: {op:"hello", protocol}  {op:"session", plan}  {op:"trace", guardian}
 *                  {op:"root", pid}  {op:"linger", survivors}  {op:"end", code, signal, survivors}
 * daemon → client: {ok:true, ...} / {ok:false, error:{code, message}} for each
 *                  request; OUTPUT frames once the session is open; a last
 *                  {op:"end", ok:true, summary} once the session is sealed, before it hangs up.
 */

export const DEFAULT_RESIDENT_SOCKET = '/run/agent-witness/resident.sock';
export const FRAME_JSON = 1;
export const FRAME_OUTPUT = 3;
/** `hello.protocol`: a daemon speaking another refuses (mismatch) and the run uses its own sensor */
export const RESIDENT_PROTOCOL = 2;
/** a JSON frame past this is a broken or hostile peer: the connection ends */
export const MAX_JSON_FRAME = 256 * 1024;
/** an OUTPUT frame carries at most a few hundred KiB of lines; past this the peer is broken */
export const MAX_OUTPUT_FRAME = 64 << 20;

export function residentSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.WITNESS_RESIDENT_SOCKET;
  return p !== undefined && p !== '' ? p : DEFAULT_RESIDENT_SOCKET;
}

export type ResidentErrorCode = 'refused' | 'bad_request' | 'mismatch' | 'not_child' | 'busy' | 'internal';

export interface ResidentError { ok: false; error: { code: ResidentErrorCode; message: string } }

/** The daemon's answer to hello: what its sensor is, so the client can decide whether it would see the same. */
export interface HelloAnswer {
  ok: true;
  daemon_pid: number;
  trace_all: boolean;
  budget_events: number;
  budget_window_ms: number;
  probes_attached: string[];
  probes_missing: string[];
}

/** The daemon's last frame: the session is sealed; `summary` is what a standalone run prints on stderr. */
export interface EndAnswer {
  op: 'end';
  ok: true;
  summary: string;
}

export function jsonFrame(obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32LE(body.length + 1, 0);
  head.writeUInt8(FRAME_JSON, 4);
  return Buffer.concat([head, body]);
}

export function outputFrame(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32LE(body.length + 1, 0);
  head.writeUInt8(FRAME_OUTPUT, 4);
  return Buffer.concat([head, body]);
}

export type Frame = { kind: typeof FRAME_JSON; json: Record<string, unknown> } | { kind: typeof FRAME_OUTPUT; bytes: Buffer };

/**
 * Incremental frame reader: push chunks, get whole frames. A frame that
 * announces more than its kind allows, an unknown kind or bad JSON throws
 * (E_IO): the stream cannot be trusted past it.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private have = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.have += chunk.length;
    const out: Frame[] = [];
    while (this.have >= 5) {
      const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [buf];
      const len = buf.readUInt32LE(0);
      const kind = buf.readUInt8(4);
      if (len < 1 || (kind === FRAME_JSON && len > MAX_JSON_FRAME) || (kind === FRAME_OUTPUT && len > MAX_OUTPUT_FRAME)) {
        throw new WitnessError('E_IO', `resident socket: bad frame (kind ${kind}, ${len} bytes)`);
      }
      if (kind !== FRAME_JSON && kind !== FRAME_OUTPUT) throw new WitnessError('E_IO', `resident socket: unknown frame kind ${kind}`);
      if (this.have < 4 + len) break;
      const body = buf.subarray(5, 4 + len);
      if (kind === FRAME_JSON) {
        let json: unknown;
        try { json = JSON.parse(body.toString('utf8')); } catch (err) {
          throw new WitnessError('E_IO', `resident socket: a JSON frame is not JSON (${(err as Error).message})`);
        }
        if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new WitnessError('E_IO', 'resident socket: a JSON frame is not an object');
        out.push({ kind: FRAME_JSON, json: json as Record<string, unknown> });
      } else {
        out.push({ kind: FRAME_OUTPUT, bytes: Buffer.from(body) }); // a copy: the reader's buffer is reused
      }
      const rest = buf.subarray(4 + len);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.have = rest.length;
    }
    return out;
  }
}
