import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultStorePath, openStore, stateDir } from '../src/store/db.js';
import { MIGRATIONS, type Migration } from '../src/store/migrations.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'witness-store-'));
  dirs.push(d);
  return d;
}

describe('embedded store', () => {
  it('state dir defaults to /var/lib/agent-witness and follows WITNESS_STATE_DIR', () => {
    expect(stateDir({})).toBe('/var/lib/agent-witness');
    expect(stateDir({ WITNESS_STATE_DIR: '' })).toBe('/var/lib/agent-witness');
    expect(defaultStorePath({ WITNESS_STATE_DIR: '/x/y' })).toBe('/x/y/witness.db');
  });

  it('creates the state dir 0700, opens in WAL mode and applies the migrations once', () => {
    const dir = join(tmp(), 'state', 'nested');
    const path = join(dir, 'witness.db');
    const s = openStore(path);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.schemaVersion).toBe(MIGRATIONS.length);
    const tables = (s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['pulse_windows', 'pulse_agents', 'pulse_destinations', 'pulse_events', 'schema_migrations']));
    s.db.prepare("INSERT INTO pulse_meta (key, value) VALUES ('k', 'v')").run();
    s.close();
    const again = openStore(path);
    expect((again.db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get() as { n: number }).n).toBe(MIGRATIONS.length);
    expect(again.db.prepare("SELECT value FROM pulse_meta WHERE key = 'k'").get()).toEqual({ value: 'v' });
    again.close();
  });

  it('tightens an existing state dir to 0700', () => {
    const dir = tmp();
    chmodSync(dir, 0o755);
    const s = openStore(join(dir, 'witness.db'));
    s.close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('a later migration adds tables without disturbing earlier ones', () => {
    const path = join(tmp(), 'witness.db');
    openStore(path).close();
    const events: Migration = { version: MIGRATIONS.length + 1, name: 'later_example', up: (db) => db.exec('CREATE TABLE later_example (id INTEGER PRIMARY KEY, line TEXT NOT NULL)') };
    const s = openStore(path, [...MIGRATIONS, events]);
    expect(s.schemaVersion).toBe(MIGRATIONS.length + 1);
    s.db.prepare("INSERT INTO later_example (line) VALUES ('{}')").run();
    s.close();
  });

  it('refuses a store from a newer build, a renamed step and out-of-order numbering', () => {
    const path = join(tmp(), 'witness.db');
    const extra: Migration = { version: 99, name: 'future', up: () => {} };
    openStore(path, [...MIGRATIONS, extra]).close();
    expect(() => openStore(path)).toThrow(/witness\.db: schema_migrations: store has migration 99 \(future\) unknown to this build/);
    const renamed = MIGRATIONS.map((m) => ({ ...m, name: `${m.name}-v2` }));
    expect(() => openStore(path, [...renamed, extra])).toThrow(/migration 1 is 'pulse' in the store but 'pulse-v2'/);
    expect(() => openStore(':memory:', [extra, ...MIGRATIONS])).toThrow(/numbered 1, 2, 3/);
  });

  it('a failing migration leaves nothing half-applied', () => {
    const path = join(tmp(), 'witness.db');
    const bad: Migration = { version: MIGRATIONS.length + 1, name: 'bad', up: (db) => { db.exec('CREATE TABLE half (x)'); db.exec('NOT SQL'); } };
    expect(() => openStore(path, [...MIGRATIONS, bad])).toThrow(/schema_migrations: migration \d+ \(bad\) failed: near "NOT"/);
    const s = openStore(path);
    expect(s.db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(s.schemaVersion).toBe(MIGRATIONS.length);
    s.close();
  });
});
