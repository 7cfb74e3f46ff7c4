import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isWitnessError } from '../src/errors.js';
import { checkBtf } from '../src/sensor/host.js';
import { checkLayout, LAYOUT } from '../src/sensor/layout.js';
import { loadNative, PACKAGE_ROOT, type NativeModule } from '../src/sensor/native.js';
// @ts-expect-error plain .mjs script without types
import { sourceHash } from '../scripts/source-hash.mjs';

const require = createRequire(import.meta.url);

describe('native addon', () => {
  it('exports a wire layout identical to the decoder\'s (bpf/events.h is the one definition)', () => {
    const mod = loadNative();
    expect(mod.layout).toEqual({ ...LAYOUT });
    expect(mod.wireVersion).toBe(LAYOUT.WA_WIRE_VERSION);
  });

  it('refuses a layout that differs, naming every differing key', () => {
    const bad = { ...loadNative().layout, 'wa_connect.fd': 80 } as Record<string, number>;
    delete bad['wa_exec.exe_len'];
    try {
      checkLayout(bad);
      expect.unreachable();
    } catch (err) {
      expect(isWitnessError(err, 'E_LAYOUT')).toBe(true);
      expect((err as Error).message).toContain('wa_connect.fd');
      expect((err as Error).message).toContain('wa_exec.exe_len');
    }
  });

  it('the committed prebuild was built from the sources in this tree', () => {
    const dir = join(PACKAGE_ROOT, 'prebuilds', 'linux-x64');
    const files = readdirSync(dir).filter((f) => f.endsWith('.glibc.node'));
    expect(files.length).toBe(1);
    const prebuild = require(join(dir, files[0]!)) as NativeModule;
    const tree = sourceHash() as string;
    expect(prebuild.sourceHash, 'prebuild is stale: run `npm run build:prebuild` and commit prebuilds/').toBe(tree);
    expect(prebuild.layout).toEqual({ ...LAYOUT });
  });

  it('a kernel without BTF is refused with a message that says what is missing', () => {
    expect(() => checkBtf('/nonexistent/vmlinux')).toThrow(/no BTF at \/nonexistent\/vmlinux.*CONFIG_DEBUG_INFO_BTF/);
  });
});
