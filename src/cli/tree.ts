import { existsSync } from 'node:fs';
import { WitnessError } from '../errors.js';
import { rfc3339Nanos } from '../events/envelope.js';
import { defaultStorePath, openStore } from '../store/db.js';
import { parseArgs, str } from './args.js';

const USAGE = 'usage: witness tree --scope TOOL_CALL_ID [--run RUN_ID] [--db PATH] [--json]';

export interface TreeRow {
  pid: number;
  start_ns: bigint;
  ppid: number;
  exe: string;
  argv: string | null;
  agent: string;
  exit_code: number | null;
  exit_signal: number | null;
}

export interface TreeNode {
  pid: number;
  ppid: number;
  exe: string;
  argv: string[];
  agent: string;
  exit: string | null;
  children: TreeNode[];
}

/** Parent links by pid: a child hangs under the latest incarnation of its ppid that started before it. */
export function buildTree(rows: TreeRow[]): TreeNode[] {
  const sorted = [...rows].sort((a, b) => (a.start_ns < b.start_ns ? -1 : a.start_ns > b.start_ns ? 1 : a.pid - b.pid));
  const latest = new Map<number, TreeNode>();
  const roots: TreeNode[] = [];
  for (const r of sorted) {
    const node: TreeNode = {
      pid: r.pid, ppid: r.ppid, exe: r.exe, argv: r.argv ? JSON.parse(r.argv) as string[] : [], agent: r.agent,
      exit: r.exit_code !== null ? `exit ${r.exit_code}` : r.exit_signal !== null ? `signal ${r.exit_signal}` : null,
      children: [],
    };
    const parent = latest.get(r.ppid);
    if (parent && parent !== node) parent.children.push(node);
    else roots.push(node);
    latest.set(r.pid, node);
  }
  return roots;
}

export function renderTree(nodes: TreeNode[], prefix = ''): string {
  let out = '';
  nodes.forEach((n, i) => {
    const last = i === nodes.length - 1;
    const cmd = n.argv.length > 0 ? n.argv.join(' ') : n.exe;
    out += `${prefix}${last ? '└─ ' : '├─ '}${n.pid} ${cmd}  [${n.agent}${n.exit ? `, ${n.exit}` : ''}]\n`;
    out += renderTree(n.children, `${prefix}${last ? '   ' : '│  '}`);
  });
  return out;
}

/** `witness tree --scope T`: the process tree a tool call produced, from the store. */
export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { booleans: ['json'], strings: ['scope', 'run', 'db'] }, 'tree');
  const toolCall = str(flags, 'scope');
  if (toolCall === undefined) throw new WitnessError('E_CONFIG', `--scope is required\n${USAGE}`, { file: 'witness tree', field: '--scope' });
  const runId = str(flags, 'run');
  const path = str(flags, 'db') ?? defaultStorePath();
  if (!existsSync(path)) throw new WitnessError('E_CONFIG', 'no store here; is the daemon running, or pass --db', { file: path });
  const store = openStore(path);
  try {
    const db = store.db;
    db.defaultSafeIntegers(true);
    const scopes = db.prepare(`SELECT run_id, session_id, tool_call_id, tool_name, opened_ns, closed_ns FROM scopes
      WHERE tool_call_id = ? AND (? IS NULL OR run_id = ?) ORDER BY opened_ns`).all(toolCall, runId ?? null, runId ?? null) as
      { run_id: string; session_id: string; tool_call_id: string; tool_name: string | null; opened_ns: bigint; closed_ns: bigint | null }[];
    if (scopes.length === 0) throw new WitnessError('E_CONFIG', `no scope with tool call id '${toolCall}'${runId ? ` in run '${runId}'` : ''}`, { file: path, field: '--scope' });
    const runs = new Set(scopes.map((s) => s.run_id));
    if (runs.size > 1) throw new WitnessError('E_CONFIG', `tool call '${toolCall}' appears in runs ${[...runs].join(', ')}; add --run`, { file: path, field: '--run' });
    const rows = (db.prepare(`SELECT p.pid, p.start_ns, p.ppid, p.exe, p.argv, p.agent, p.exit_code, p.exit_signal
      FROM process_scopes s JOIN processes p ON p.pid = s.pid AND p.start_ns = s.start_ns
      WHERE s.tool_call_id = ? AND s.run_id = ?`).all(toolCall, scopes[0]!.run_id) as Record<string, unknown>[]).map((r) => ({
      pid: Number(r.pid), start_ns: r.start_ns as bigint, ppid: Number(r.ppid), exe: String(r.exe), argv: r.argv as string | null,
      agent: String(r.agent), exit_code: r.exit_code === null ? null : Number(r.exit_code), exit_signal: r.exit_signal === null ? null : Number(r.exit_signal),
    }));
    const tree = buildTree(rows);
    if (flags.json === true) {
      const s = scopes[0]!;
      process.stdout.write(`${JSON.stringify({ run_id: s.run_id, session_id: s.session_id, tool_call_id: s.tool_call_id, tool_name: s.tool_name, processes: tree })}\n`);
      return 0;
    }
    for (const s of scopes) {
      process.stdout.write(`scope run=${s.run_id} session=${s.session_id} tool_call=${s.tool_call_id}${s.tool_name ? ` tool=${s.tool_name}` : ''} ` +
        `opened=${rfc3339Nanos(s.opened_ns)} closed=${s.closed_ns !== null ? rfc3339Nanos(s.closed_ns) : 'open'}\n`);
    }
    process.stdout.write(tree.length > 0 ? renderTree(tree) : '(no processes recorded in this scope)\n');
    return 0;
  } finally {
    store.close();
  }
}
