import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestPath, writeDigest, type WrittenDigest } from '../src/pulse/digest.js';
import { PulseRepo } from '../src/pulse/repo.js';
import { openStore, type Store } from '../src/store/db.js';
import { countColour, distinctColours, readPng } from './fixtures/pulse/png.js';
import { HOUR, MINUTE, Sim, T0, runEngine } from './fixtures/pulse/sim.js';

const HOSTILE = '<script>alert(1)</script>.evil.example';
let dir: string;
let store: Store;
let written: WrittenDigest;

/** 30 h of two agents: coder goes quiet 18–22, the sensor is down 12–13 and drops events at 08. */
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pulse-digest-'));
  const sim = new Sim()
    .heartbeats(T0, T0 + 12 * HOUR, MINUTE, (t) => (t >= T0 + 8 * HOUR + 20 * MINUTE ? 40 : 0))
    .heartbeats(T0 + 14 * HOUR, T0 + 30 * HOUR)
    .steady('coder', 0, 12, 8).steady('coder', 14, 18, 6).steady('coder', 22, 30, 9)
    .steady('researcher', 3, 12, 2, '198.51.100.20').steady('researcher', 14, 30, 3, '198.51.100.20')
    .connect(T0 + 25 * HOUR + 5 * MINUTE, 'coder', '203.0.113.77', 8443, { 'tls.client.server_name': 'api.example.net' })
    .push(T0 + 25 * HOUR + 4 * MINUTE, 'dns.query', { 'witness.agent': 'coder', 'dns.question.name': HOSTILE })
    .push(T0 + 26 * HOUR, 'dns.query', { 'witness.agent': 'coder', 'dns.question.name': 'registry.npmjs.org' })
    .push(T0 + 27 * HOUR, 'dns.query', { 'witness.agent': 'researcher', 'dns.question.name': 'a|b*c_[x](y).example' })
    .push(T0 + 29 * HOUR + 10 * MINUTE, 'llm.call', {
      'witness.agent': 'coder', 'network.peer.address': '203.0.113.50', 'network.peer.port': 443, 'witness.conn.tx_bytes': 321,
      'witness.conn.rx_bytes': 4567, 'gen_ai.provider.name': 'anthropic', 'witness.llm.request_bytes': 321, 'witness.llm.response_bytes': 4567,
    });
  store = openStore(join(dir, 'witness.db'));
  runEngine(store, sim.sorted(), { defaults: { quietThreshold: 1, quietWindows: 3 } }, T0 + 30 * HOUR);
  written = writeDigest(new PulseRepo(store), join(dir, 'digest'), T0 + 29 * HOUR, T0 + 30 * HOUR);
});
afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('operator digest', () => {
  it('lives at …/YYYY-MM-DD/HH/ per window', () => {
    expect(written.dir).toBe(join(dir, 'digest', '2026-11-02', '05'));
    expect(digestPath('/d', Date.UTC(2026, 0, 2, 3, 15, 30))).toBe('/d/2026-01-02/03/1530');
    expect(statSync(written.html).mode & 0o777).toBe(0o600);
  });

  it('markdown lists the rhythm, first-seen destinations and names, escaped', () => {
    const md = readFileSync(written.markdown, 'utf8');
    expect(md).toContain('## Agent coder');
    expect(md).toContain('## Agent researcher');
    expect(md).toContain('203.0.113.77:8443 — first at 2026-11-02T01:05:00Z');
    expect(md).toContain('- api.example.net');
    expect(md).toContain('| anthropic | 1 | 321 | 4567 |');
    expect(md).toContain('- \\<script\\>alert\\(1\\)\\</script\\>.evil.example');
    expect(md).toContain('- a\\|b\\*c\\_\\[x\\]\\(y\\).example');
    expect(md).toContain('| 6 | 0 | 0 | 0! | 0! | 9 |'); // quiet from 18:00, alert from the 3rd window, recovery at 22:00
    expect(md).toContain('| 8 | 0G | 0G | 6 |'); // 12:00 and 13:00: the sensor was not watching
    expect(md).toContain('| 8d |'); // 08:00: the sensor dropped events
    expect(md).toContain('- 20:00Z `pulse.alert` quiet for 3 windows');
    expect(md).not.toContain(HOSTILE);
  });

  it('html is self-contained, escaped, with a 24-window SVG strip per agent', () => {
    const html = readFileSync(written.html, 'utf8');
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;.evil.example');
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    expect(html.match(/<svg /g)).toHaveLength(2);
    const coder = html.slice(html.indexOf('<h2>coder'), html.indexOf('<h2>researcher'));
    expect(coder.match(/<g>/g)).toHaveLength(24);
    expect(coder.match(/class="alert"/g)).toHaveLength(2); // windows 20 and 21 carry the alert
    expect(coder.match(/url\(#hatch\)/g)).toHaveLength(2);
  });

  it('renders in headless Chromium with bars, alert marks and gap hatching visible', (ctx) => {
    const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((b) => spawnSync('which', [b]).status === 0);
    if (!chromium) {
      if (process.env.CI === 'true') throw new Error('chromium is required in CI (apt-get install -y chromium)');
      ctx.skip();
      return;
    }
    const profile = mkdtempSync(join(tmpdir(), 'pulse-chromium-'));
    const png = join(dir, 'digest.png');
    try {
      const r = spawnSync(chromium, [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, `--screenshot=${png}`, '--window-size=1200,900',
        `file://${written.html}`,
      ], { timeout: 90_000, encoding: 'utf8' });
      expect(existsSync(png), `chromium wrote no screenshot: ${r.stderr}`).toBe(true);
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
    copyFileSync(png, join(tmpdir(), 'pulse-digest-screenshot.png')); // kept for a human to look at
    const image = readPng(readFileSync(png));
    expect([image.width, image.height]).toEqual([1200, 900]);
    expect(distinctColours(image)).toBeGreaterThan(50);
    expect(countColour(image, [0x3a, 0x6e, 0xa5])).toBeGreaterThan(2000); // flow bars
    expect(countColour(image, [0xd6, 0x28, 0x28])).toBeGreaterThan(100);  // alert marks + badge
  });
});
