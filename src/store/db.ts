import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { WitnessError } from '../errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';

/**
 * The embedded store: one SQLite file in WAL mode (so `witness pulse status`
 * can read while the daemon writes), schema evolved by numbered migrations.
 */
export const DEFAULT_STATE_DIR = '/var/lib/agent-witness';
export const STORE_FILE = 'witness.db';

export interface Store {
  readonly db: Database.Database;
  /** File path, or ':memory:' for a throwaway store (replay, tests). */
  readonly path: string;
  /** Highest migration applied. */
  readonly schemaVersion: number;
  close(): void;
}

/** The state directory: env WITNESS_STATE_DIR, else /var/lib/agent-witness. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.WITNESS_STATE_DIR;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_STATE_DIR;
}

export function defaultStorePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), STORE_FILE);
}

/**
 * Creates the directory 0700 (it holds who-did-what records of every agent on
 * the host, readable by root only) and tightens it if it already existed.
 */
export function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if ((statSync(dir).mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  } catch (cause) {
    throw new WitnessError('E_IO', `cannot create state directory (${(cause as Error).message})`, { file: dir, cause });
  }
}

/**
 * Opens (creating if needed) the store and brings its schema up to date.
 * `path` defaults to $WITNESS_STATE_DIR/witness.db; ':memory:' is allowed.
 */
export function openStore(path: string = defaultStorePath(), migrations: readonly Migration[] = MIGRATIONS): Store {
  if (path !== ':memory:') ensurePrivateDir(dirname(path));
  let db: Database.Database;
  try {
    db = new Database(path);
    // The directory is already 0700; the file is 0600 too so a copy keeps it
    // private. SQLite gives the -wal/-shm files the database file's mode.
    if (path !== ':memory:') chmodSync(path, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
  } catch (cause) {
    throw new WitnessError('E_STORE', `cannot open store (${(cause as Error).message})`, { file: path, cause });
  }
  try {
    const schemaVersion = migrate(db, path, migrations);
    return { db, path, schemaVersion, close: () => db.close() };
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Applies every migration newer than the store, each in its own transaction.
 * Refuses a store written by a newer build, or whose recorded migration names
 * disagree with ours (two branches numbered the same step differently).
 */
export function migrate(db: Database.Database, path: string, migrations: readonly Migration[]): number {
  checkMigrationList(migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const applied = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as { version: unknown; name: unknown }[];
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const row of applied) {
    if (typeof row.version !== 'number' || typeof row.name !== 'string') {
      throw new WitnessError('E_STORE', 'corrupt schema_migrations row', { file: path, field: 'schema_migrations' });
    }
    const ours = known.get(row.version);
    if (!ours) {
      throw new WitnessError('E_STORE', `store has migration ${row.version} (${row.name}) unknown to this build; upgrade agent-witness`, { file: path, field: 'schema_migrations' });
    }
    if (ours.name !== row.name) {
      throw new WitnessError('E_STORE', `migration ${row.version} is '${row.name}' in the store but '${ours.name}' in this build`, { file: path, field: 'schema_migrations' });
    }
  }
  const done = new Set(applied.map((r) => r.version as number));
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  let version = applied.length > 0 ? Math.max(...done) : 0;
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    try {
      db.transaction(() => {
        m.up(db);
        record.run(m.version, m.name, new Date().toISOString());
      })();
    } catch (cause) {
      throw new WitnessError('E_STORE', `migration ${m.version} (${m.name}) failed: ${(cause as Error).message}`, { file: path, field: 'schema_migrations', cause });
    }
    version = Math.max(version, m.version);
  }
  return version;
}

function checkMigrationList(migrations: readonly Migration[]): void {
  let previous = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= previous) {
      throw new WitnessError('E_STORE', `migrations must be numbered 1, 2, 3... in order; got ${m.version} after ${previous}`, { field: 'migrations' });
    }
    previous = m.version;
  }
}
