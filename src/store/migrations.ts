import type Database from 'better-sqlite3';

/**
 * Numbered schema steps. Append new steps with the next number; never edit or
 * renumber a step that has shipped — stores in the field already applied it.
 * Each step runs inside a transaction together with its bookkeeping row.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: Database.Database): void;
}

const pulse: Migration = {
  version: 1,
  name: 'pulse',
  up(db) {
    db.exec(`
      -- One row per (agent, closed window): the window's metadata vector.
      CREATE TABLE pulse_windows (
        agent TEXT NOT NULL,
        window_start INTEGER NOT NULL,       -- epoch ms, inclusive
        window_end INTEGER NOT NULL,         -- epoch ms, exclusive
        slot INTEGER NOT NULL,               -- index of the window within its period (hour-of-day)
        status TEXT NOT NULL CHECK (status IN ('ok', 'gap', 'degraded')),
        reasons TEXT NOT NULL,               -- JSON string[]
        flows INTEGER NOT NULL,
        failed_flows INTEGER NOT NULL,
        external_flows INTEGER NOT NULL,
        unique_destinations INTEGER NOT NULL,
        unique_external_destinations INTEGER NOT NULL,
        first_seen TEXT NOT NULL,            -- JSON string[] of destinations new to this agent
        dns_names TEXT NOT NULL,             -- JSON string[]
        sni_names TEXT NOT NULL,             -- JSON string[]
        execs INTEGER NOT NULL,
        file_writes INTEGER NOT NULL,
        sensitive_reads INTEGER NOT NULL,
        findings INTEGER NOT NULL,
        drops INTEGER NOT NULL,
        heartbeats INTEGER NOT NULL,
        quiet_streak INTEGER NOT NULL,       -- state after this window
        alert_active INTEGER NOT NULL,
        PRIMARY KEY (agent, window_start)
      );
      CREATE INDEX pulse_windows_slot ON pulse_windows (agent, slot, window_start);
      CREATE INDEX pulse_windows_start ON pulse_windows (window_start);

      -- Per-agent rolling state, so a restarted daemon resumes the streak.
      CREATE TABLE pulse_agents (
        agent TEXT PRIMARY KEY,
        active INTEGER NOT NULL,
        quiet_streak INTEGER NOT NULL,
        alert_active INTEGER NOT NULL,
        last_window_start INTEGER,
        last_window_end INTEGER,
        last_band TEXT                       -- JSON band of external flows, null until armed
      );

      -- Every destination an agent ever reached: first-seen is "not in here yet".
      CREATE TABLE pulse_destinations (
        agent TEXT NOT NULL,
        destination TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        PRIMARY KEY (agent, destination)
      );

      -- External connection instants kept for the sliding beacon window.
      CREATE TABLE pulse_flows (
        agent TEXT NOT NULL,
        destination TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        bytes INTEGER
      );
      CREATE INDEX pulse_flows_ts ON pulse_flows (ts_ms);

      -- (agent, destination) pairs currently scored as beacons, to emit once per episode.
      CREATE TABLE pulse_beacons (
        agent TEXT NOT NULL,
        destination TEXT NOT NULL,
        score REAL NOT NULL,
        since_ms INTEGER NOT NULL,
        PRIMARY KEY (agent, destination)
      );

      -- Pulse events raised, for the digest and status.
      CREATE TABLE pulse_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        event TEXT NOT NULL,
        agent TEXT NOT NULL,
        window_start INTEGER,
        attributes TEXT NOT NULL             -- JSON object
      );
      CREATE INDEX pulse_events_time ON pulse_events (time_ms);

      -- Engine bookkeeping (open window, drop-counter baseline, last heartbeat).
      CREATE TABLE pulse_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `);
  },
};

/**
 * Step 2 — attribution: declared agents, ToolCallScopes and the process
 * incarnations they produced (src/identity/store.ts writes them; `witness
 * tree --scope T` reads them).
 */
const attribution: Migration = {
  version: 2,
  name: 'attribution',
  up(db) {
    db.exec(`
      -- Declared agents as last loaded from agents.json.
      CREATE TABLE agents (
        name TEXT PRIMARY KEY,
        declaration TEXT NOT NULL,           -- JSON of the manifest entry
        manifest_sha256 TEXT NOT NULL,
        loaded_at TEXT NOT NULL              -- RFC 3339
      );

      -- ToolCallScopes as the harness opened and closed them.
      CREATE TABLE scopes (
        run_id TEXT NOT NULL,
        tool_call_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        tool_name TEXT,
        pid INTEGER,
        cgroup TEXT,
        opened_ns INTEGER NOT NULL,          -- epoch ns
        closed_ns INTEGER,
        PRIMARY KEY (run_id, tool_call_id, opened_ns)
      );
      CREATE INDEX scopes_tool_call ON scopes (tool_call_id);

      -- One row per process incarnation (pid + the fork/exec instant that started it).
      CREATE TABLE processes (
        pid INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,           -- epoch ns; 0 when first met mid-life
        ppid INTEGER NOT NULL,
        exe TEXT NOT NULL,
        sha256 TEXT,
        argv TEXT,                           -- JSON string[]
        cwd TEXT,
        comm TEXT NOT NULL,
        uid INTEGER NOT NULL,
        user_name TEXT,
        cgroup_path TEXT,
        container_id TEXT,
        pod_uid TEXT,
        systemd_unit TEXT,
        agent TEXT NOT NULL,
        source TEXT NOT NULL,                -- tree | proc | kernel
        exit_ns INTEGER,
        exit_code INTEGER,
        exit_signal INTEGER,
        PRIMARY KEY (pid, start_ns)
      );
      CREATE INDEX processes_agent ON processes (agent, start_ns);

      -- Which scopes a process incarnation acted in (a shell may serve several tool calls).
      CREATE TABLE process_scopes (
        pid INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        tool_call_id TEXT NOT NULL,
        PRIMARY KEY (run_id, tool_call_id, pid, start_ns)
      );
    `);
  },
};

/**
 * Step 3 — every exported envelope, kept for `witness query` and trimmed by
 * age and size (src/store/events.ts). `line` is the exact NDJSON line that
 * was exported; the other columns are copies of its fields for indexing.
 */
const events: Migration = {
  version: 3,
  name: 'events',
  up(db) {
    db.exec(`
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,            -- epoch ms of the envelope's time (ns precision stays in line)
        event TEXT NOT NULL,
        agent TEXT,                          -- attributes['witness.agent'] when attributed
        pid INTEGER,                         -- attributes['process.pid']
        line TEXT NOT NULL                   -- the exported NDJSON line
      );
      CREATE INDEX events_time ON events (time_ms);
      CREATE INDEX events_agent_time ON events (agent, time_ms);
      CREATE INDEX events_event_time ON events (event, time_ms);
    `);
  },
};

/**
 * Step 4 — a window's bytes (kernel counts of the connections that ended in it) and its
 * model-provider traffic (llm.call per gen_ai.provider.name), for the digest's provider section.
 * Windows closed before this step read as 0 bytes and no providers.
 */
const windowBytes: Migration = {
  version: 4,
  name: 'window_bytes',
  up(db) {
    db.exec(`
      ALTER TABLE pulse_windows ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE pulse_windows ADD COLUMN llm_providers TEXT NOT NULL DEFAULT '[]';  -- JSON [{provider, calls, requestBytes, responseBytes}]
    `);
  },
};

/**
 * Step 5 — the agent index holds attributed rows only. Host-wide, most rows
 * have no agent, and each paid an entry in an index that `agent = ?` never
 * reads (a partial index serves it: `agent = ?` implies `agent IS NOT NULL`);
 * at 50k rows/s that entry was ~20 % of the store's insert-and-trim cost.
 */
const agentIndexPartial: Migration = {
  version: 5,
  name: 'events_agent_partial',
  up(db) {
    db.exec(`
      DROP INDEX events_agent_time;
      CREATE INDEX events_agent_time ON events (agent, time_ms) WHERE agent IS NOT NULL;
    `);
  },
};

/**
 * Step 6 — compact rows. A row's line is the NDJSON line the file sinks get:
 * a compact record (no process context) points at its key's context in
 * `event_contexts` (`ctx`), and `witness query` joins the two. Storing the
 * whole record instead cost a JSON.stringify per row on the daemon's event
 * loop and twice the bytes per row in SQLite. `last_id` is the newest event
 * row that points at a context: retention deletes contexts no kept row needs.
 * Rows written before this step have `ctx` NULL and whole lines.
 */
const compactRows: Migration = {
  version: 6,
  name: 'event_contexts',
  up(db) {
    db.exec(`
      CREATE TABLE event_contexts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,                   -- witness.process.key
        attrs TEXT NOT NULL,                 -- JSON object: the context attributes of the key's context record
        last_id INTEGER NOT NULL             -- events.id of the newest row that points here
      );
      CREATE INDEX event_contexts_last ON event_contexts (last_id);
      ALTER TABLE events ADD COLUMN ctx INTEGER;   -- event_contexts.id for a compact line; NULL: the line is whole
    `);
  },
};

/**
 * Step 7 — the event-name index leaves out file.write, most of a host's rows
 * (every write-open anywhere). Each of those paid an entry that its own
 * queries hardly need: `--event file.write` walks the time index, where
 * nearly every row is one. ~1.2 of the store thread's ~6.5 us per row at
 * 50k rows/s (insert plus retention). A query for any other name carries
 * the index's own term (src/store/events.ts, NOT_HOT) so SQLite can use it.
 */
const eventIndexPartial: Migration = {
  version: 7,
  name: 'events_event_partial',
  up(db) {
    db.exec(`
      DROP INDEX events_event_time;
      CREATE INDEX events_event_time ON events (event, time_ms) WHERE event <> 'file.write';
    `);
  },
};

/**
 * Step 8 — the agent index leaves out 'unattributed' too. Step 5 meant to
 * leave out a host's unattributed rows, but the enricher names them
 * 'unattributed' (src/identity/enricher.ts), not NULL, so every host-wide
 * row still paid an entry, inserted and later deleted by retention: ~1 us of
 * the writer thread's ~7 us per row. `--agent unattributed` walks the time
 * index, where nearly every row is one; a query for any other agent carries
 * the index's own term (src/store/events.ts, ATTRIBUTED).
 */
const agentIndexAttributed: Migration = {
  version: 8,
  name: 'events_agent_attributed',
  up(db) {
    db.exec(`
      DROP INDEX events_agent_time;
      CREATE INDEX events_agent_time ON events (agent, time_ms) WHERE agent <> 'unattributed';
    `);
  },
};

export const MIGRATIONS: readonly Migration[] = [pulse, attribution, events, windowBytes, agentIndexPartial, compactRows, eventIndexPartial, agentIndexAttributed];
