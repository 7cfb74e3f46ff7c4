import { WitnessError } from '../errors.js';

/**
 * The resident socket's wire format (docs/resident.md): `witness run` asks
 * the running daemon to trace the tree it is about to start, and the daemon
 * streams that tree's raw kernel records back, so a call pays neither the
 * probes' load and attach nor their detach.
 *
 * Frames both ways: `u32 length` (little-endian, of what follows), `u8 kind`,
 * then `length - 1` payload bytes.
 *   kind 1 (JSON):    one UTF-8 JSON object (the requests and answers below)
 *   kind 2 (RECORDS): raw records framed exactly as the addon's batches
 *                     (u32 len, u32 0, record, zero padding to 8), so the
 *                     client decodes them with the same decoder as its own sensor
 *
 * client → daemon: {op:"hello", wire, source}  {op:"trace", guardian, sensitive}
 *                  {op:"root", pid}            {op:"end"}
 * daemon → client: {ok:true, ...} / {ok:false, error:{code, message}} for each
 *                  request; RECORDS frames after "root"; {op:"event", event} for the
 *                  tree's `suppressed` summaries (made from kernel counters, not records); a last
 *                  {op:"end", routed, sent, dropped, ...} before it hangs up.
 */

export const DEFAULT_RESIDENT_SOCKET = '/run/agent-witness/resident.sock';
export const FRAME_JSON = 1;
export const FRAME_RECORDS = 2;
/** a JSON frame past this is a broken or hostile peer: the connection ends */
export const MAX_JSON_FRAME = 256 * 1024;
/** a RECORDS frame is at most one addon batch (1 MiB default) plus its largest record */
export const MAX_RECORDS_FRAME = 64 << 20;

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

/** The daemon's last frame: per record kind, routed = sent + dropped (the stream's own stage). */
export interface EndAnswer {
  op: 'end';
  routed: Record<string, number>;
  sent: Record<string, number>;
  dropped: Record<string, number>;
  /** host-wide ring drops while the session ran: the tree's share is unknown, so it is named, not guessed */
  host_kernel_drops: number;
  /** the guardian's exit record closed the stream (false: the wait timed out) */
  barrier: boolean;
}

/** A sensor event that is not a wire record (a `suppressed` summary) as JSON: bigints as {"$n":"123"}. */
export function encodeEvent(ev: object): unknown {
  return JSON.parse(JSON.stringify(ev, (_k, v: unknown) => (typeof v === 'bigint' ? { $n: v.toString() } : v)));
}

export function decodeEvent<T>(obj: unknown): T {
  return JSON.parse(JSON.stringify(obj), (_k, v: unknown) => (
    v !== null && typeof v === 'object' && Object.keys(v).length === 1 && typeof (v as { $n?: unknown }).$n === 'string' ? BigInt((v as { $n: string }).$n) : v)) as T;
}

export function jsonFrame(obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32LE(body.length + 1, 0);
  head.writeUInt8(FRAME_JSON, 4);
  return Buffer.concat([head, body]);
}

export function recordsFrameHead(bytes: number): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32LE(bytes + 1, 0);
  head.writeUInt8(FRAME_RECORDS, 4);
  return head;
}

export type Frame = { kind: typeof FRAME_JSON; json: Record<string, unknown> } | { kind: typeof FRAME_RECORDS; records: Buffer };

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
      if (len < 1 || (kind === FRAME_JSON && len > MAX_JSON_FRAME) || (kind === FRAME_RECORDS && len > MAX_RECORDS_FRAME)) {
        throw new WitnessError('E_IO', `resident socket: bad frame (kind ${kind}, ${len} bytes)`);
      }
      if (kind !== FRAME_JSON && kind !== FRAME_RECORDS) throw new WitnessError('E_IO', `resident socket: unknown frame kind ${kind}`);
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
        out.push({ kind: FRAME_RECORDS, records: Buffer.from(body) }); // a copy: the decoder keeps views into it
      }
      const rest = buf.subarray(4 + len);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.have = rest.length;
    }
    return out;
  }
}
