import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ImportAbort, importWindows } from '../src/pulse/importer.js';
import { PulseRepo } from '../src/pulse/repo.js';
import type { WindowRecord } from '../src/pulse/window.js';
import { openStore, type Store } from '../src/store/db.js';
import { HOUR, Sim, T0, ofKind, runEngine } from './fixtures/pulse/sim.js';

let store: Store | undefined;
const dirs: string[] = [];
afterEach(() => {
  store?.close();
  store = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function record(agent: string, hour: number): WindowRecord {
  return {
    agent, windowStart: T0 + hour * HOUR, windowEnd: T0 + (hour + 1) * HOUR, slot: hour % 24, status: 'ok', reasons: [],
    flows: 3, failedFlows: 0, externalFlows: 2, uniqueDestinations: 2, uniqueExternalDestinations: 1, firstSeen: [],
    dnsNames: [], sniNames: [], bytes: 0, llmProviders: [], execs: 0, fileWrites: 0, sensitiveReads: 0, findings: 0, drops: 0, heartbeats: 60,
    quietStreak: 0, alertActive: false,
  };
}

const rows = (s: Store): number => (s.db.prepare('SELECT COUNT(*) AS n FROM pulse_windows').get() as { n: number }).n;

describe('rolling import', () => {
  it('catches a window imported twice and leaves the store as it was', () => {
    store = openStore(':memory:');
    const repo = new PulseRepo(store);
    expect(importWindows(repo, [record('a', 0), record('b', 0)])).toEqual([]);
    expect(rows(store)).toBe(2);
    let caught: unknown;
    try { importWindows(repo, [record('a', 0)]); } catch (e) { caught = e; }
    expect(caught).toBeInstanceOf(ImportAbort);
    expect((caught as ImportAbort).faults[0]).toMatchObject({ reason: 'double_import', agent: 'a' });
    expect(rows(store)).toBe(2);
  });

  it('the row-count assertion catches a duplicate even when continuity state was lost', () => {
    store = openStore(':memory:');
    const repo = new PulseRepo(store);
    importWindows(repo, [record('a', 0)]);
    store.db.prepare('DELETE FROM pulse_agents').run(); // state forgotten: continuity can't tell
    expect(() => importWindows(repo, [record('a', 0)])).toThrow(/store grew by 0 rows for 1 windows/);
    expect(rows(store)).toBe(1);
  });

  it('reports skipped windows but keeps the good window', () => {
    store = openStore(':memory:');
    const repo = new PulseRepo(store);
    importWindows(repo, [record('a', 0)]);
    const faults = importWindows(repo, [record('a', 3)]);
    expect(faults).toEqual([expect.objectContaining({ reason: 'skipped_windows', agent: 'a', expectedStart: T0 + HOUR })]);
    expect(rows(store)).toBe(2);
  });

  it('an engine re-running windows already in the store emits pulse.fault, not silence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-import-'));
    dirs.push(dir);
    const path = join(dir, 'witness.db');
    const sim = new Sim().heartbeats(T0, T0 + 6 * HOUR).steady('coder', 0, 6, 3);
    const first = openStore(path);
    runEngine(first, sim.sorted(), {}, T0 + 6 * HOUR);
    expect(rows(first)).toBe(6);
    // A second writer with stale state (e.g. a restored backup of the meta) replays hours 3..5.
    first.db.prepare("UPDATE pulse_meta SET value = ? WHERE key = 'open_window_start'").run(String(T0 + 3 * HOUR));
    first.close();
    store = openStore(path);
    const later = sim.sorted().filter((e) => Date.parse(e.time) >= T0 + 3 * HOUR);
    const { pulse } = runEngine(store, later, {}, T0 + 6 * HOUR);
    const faults = ofKind(pulse, 'pulse.fault', 'coder');
    expect(faults).toHaveLength(3);
    expect(faults.every((f) => f.attributes['witness.pulse.fault'] === 'double_import')).toBe(true);
    expect(rows(store)).toBe(6);
    expect(ofKind(pulse, 'pulse.first_seen')).toHaveLength(0);
  });
});
