import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Manifest } from '../manifest/schema.js';
import type { Scope } from '../scope/registry.js';
import type { ProcessInfo } from './process-table.js';

/**
 * Writes attribution state (migration 2 tables) to the store. Rows are
 * queued and written in one transaction per flush so the event path pays a
 * push, not a SQLite commit.
 */
type Op = () => void;

export class AttributionStore {
  private readonly queue: Op[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly upsertProcess: Database.Statement;
  private readonly exitProcess: Database.Statement;
  private readonly upsertScope: Database.Statement;
  private readonly linkScope: Database.Statement;

  constructor(private readonly db: Database.Database, private readonly flushMs = 200, private readonly maxQueued = 2000) {
    this.upsertProcess = db.prepare(`INSERT INTO processes
      (pid, start_ns, ppid, exe, sha256, argv, cwd, comm, uid, user_name, cgroup_path, container_id, pod_uid, systemd_unit, agent, source)
      VALUES (@pid, @start_ns, @ppid, @exe, @sha256, @argv, @cwd, @comm, @uid, @user_name, @cgroup_path, @container_id, @pod_uid, @systemd_unit, @agent, @source)
      ON CONFLICT (pid, start_ns) DO UPDATE SET ppid = excluded.ppid, exe = excluded.exe, sha256 = excluded.sha256, argv = excluded.argv,
        cwd = excluded.cwd, comm = excluded.comm, uid = excluded.uid, user_name = excluded.user_name, cgroup_path = excluded.cgroup_path,
        container_id = excluded.container_id, pod_uid = excluded.pod_uid, systemd_unit = excluded.systemd_unit, agent = excluded.agent, source = excluded.source`);
    this.exitProcess = db.prepare('UPDATE processes SET exit_ns = ?, exit_code = ?, exit_signal = ? WHERE pid = ? AND start_ns = ?');
    this.upsertScope = db.prepare(`INSERT INTO scopes (run_id, tool_call_id, session_id, tool_name, pid, cgroup, opened_ns, closed_ns)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, tool_call_id, opened_ns) DO UPDATE SET closed_ns = excluded.closed_ns`);
    this.linkScope = db.prepare('INSERT OR IGNORE INTO process_scopes (pid, start_ns, run_id, tool_call_id) VALUES (?, ?, ?, ?)');
  }

  /** Replaces the agents table with the manifest's declarations. */
  recordAgents(manifest: Manifest, manifestText: string): void {
    const sha = createHash('sha256').update(manifestText).digest('hex');
    const now = new Date().toISOString();
    const insert = this.db.prepare('INSERT INTO agents (name, declaration, manifest_sha256, loaded_at) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM agents').run();
      for (const a of manifest.agents) insert.run(a.name, JSON.stringify(a), sha, now);
    }).immediate(); // the write lock first: the store's writer thread commits between our read and write otherwise
  }

  process(p: ProcessInfo): void {
    const row = {
      pid: p.pid, start_ns: p.startNs ?? 0n, ppid: p.ppid, exe: p.exe, sha256: p.sha256,
      argv: p.argv ? JSON.stringify(p.argv) : null, cwd: p.cwd, comm: p.comm, uid: p.uid, user_name: p.user,
      cgroup_path: p.cgroupPath, container_id: p.cg.containerId, pod_uid: p.cg.podUid, systemd_unit: p.cg.systemdUnit,
      agent: p.agent, source: p.source,
    };
    this.push(() => this.upsertProcess.run(row));
  }

  exit(p: ProcessInfo, exitNs: bigint, code: number | null, signal: number | null): void {
    const start = p.startNs ?? 0n;
    this.push(() => this.exitProcess.run(exitNs, code, signal, p.pid, start));
  }

  scope(s: Scope): void {
    this.push(() => this.upsertScope.run(s.runId, s.toolCallId, s.sessionId, s.toolName, s.pid, s.cgroupPath, s.openedNs, s.closedNs));
  }

  processInScope(p: ProcessInfo, s: Scope): void {
    const start = p.startNs ?? 0n;
    this.push(() => this.linkScope.run(p.pid, start, s.runId, s.toolCallId));
  }

  private push(op: Op): void {
    this.queue.push(op);
    if (this.queue.length >= this.maxQueued) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return;
    const ops = this.queue.splice(0);
    // BEGIN IMMEDIATE: the events table's writer thread (src/daemon/store-worker-sink.ts) shares the file
    this.db.transaction(() => { for (const op of ops) op(); }).immediate();
  }
}
