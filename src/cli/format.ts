import type { Envelope } from '../events/envelope.js';

const COLOURS: Record<string, string> = {
  process: '\x1b[36m', network: '\x1b[33m', dns: '\x1b[35m', file: '\x1b[32m', security: '\x1b[31m', sensor: '\x1b[90m',
};
const RESET = '\x1b[0m';

function describe(e: Envelope): string {
  const a = e.attributes;
  switch (e.event) {
    case 'process.exec': return `${(a['process.command_args'] as string[] | undefined)?.join(' ') ?? a['process.executable.path']}`;
    case 'process.exit': return a['witness.exit.signal'] != null ? `signal ${a['witness.exit.signal']}` : `code ${a['process.exit.code']}`;
    case 'network.connect': return `${a['network.transport']} ${a['network.peer.address']}:${a['network.peer.port']} → ${a['witness.result']}`;
    case 'dns.query': return `${a['dns.question.name'] ?? '?'} ${a['witness.dns.type'] ?? ''}`;
    case 'file.rename': return `${a['witness.file.old_path']} → ${a['file.path']}`;
    case 'security.setuid':
    case 'security.setgid': return `${a['witness.syscall']} ${(a['witness.ids.old'] as string[]).join(',')} → ${(a['witness.ids.new'] as string[]).join(',')}`;
    case 'security.ptrace': return `${a['witness.ptrace.request']} pid ${a['witness.ptrace.target_pid']} → ${a['witness.result']}`;
    case 'tls.client_hello': return `${a['server.address'] ?? '(no SNI)'} ${a['tls.client.ja4'] ?? a['witness.tls.parse_error'] ?? ''}`;
    case 'llm.call': return `${a['gen_ai.provider.name']} ${a['server.address']} ↑${a['witness.conn.tx_bytes']} ↓${a['witness.conn.rx_bytes']} ttft ${a['witness.llm.ttft_ms'] ?? '?'} ms`;
    case 'network.close': return `${a['server.address'] ?? a['network.peer.address']}:${a['network.peer.port']} ↑${a['witness.conn.tx_bytes']} ↓${a['witness.conn.rx_bytes']}`;
    case 'dns.answer': return `${a['dns.question.name'] ?? '?'} → ${(a['dns.answers'] as string[] | undefined)?.join(' ') ?? ''}`;
    case 'network.unix_connect': return `${a['network.peer.address']} → ${a['witness.result']}`;
    case 'security.bind': return `${a['network.transport']} ${a['network.local.address']}:${a['network.local.port']} → ${a['witness.result']}`;
    default: return String(a['file.path'] ?? '');
  }
}

// C0, DEL, C1 and the Unicode line/bidi controls: an agent names its files,
// argv and comm, and must not be able to move the cursor, erase a line or
// reorder text on the operator's terminal.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Agent-chosen text made inert for a terminal: every control character as \xNN or \u{NNNN}. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    const n = c.codePointAt(0)!;
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

/** One compact line per event for a human at a terminal. */
export function humanLine(e: Envelope, colour: boolean): string {
  const kind = e.event.split('.')[0] ?? '';
  const name = escapeControl(e.event).padEnd(20);
  const head = `${e.time.slice(11, 23)} ${String(e.attributes['process.pid'] ?? '').padStart(7)} ${escapeControl(String(e.attributes['process.command'] ?? '')).padEnd(15)}`;
  const body = escapeControl(describe(e));
  return colour ? `${head} ${COLOURS[kind] ?? ''}${name}${RESET} ${body}` : `${head} ${name} ${body}`;
}
