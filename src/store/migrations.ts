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

export const MIGRATIONS: readonly Migration[] = [pulse];
