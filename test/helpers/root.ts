/**
 * Root-only suites outside test/kernel/ (sockets, permissions, cgroups).
 * Without root — or without what the suite needs — they skip, unless
 * WITNESS_REQUIRE_KERNEL=1 (CI runs as root), where the same condition
 * throws at collection, so the file fails instead of skipping quietly.
 * scripts/test-summary.mjs additionally fails a CI run on any skipped test.
 */
import { REQUIRE_KERNEL } from './kernel.js';

export function rootSuite(what: string, extraReason: string | null = null): { skip: boolean } {
  const reason = process.getuid?.() !== 0 ? 'not root' : extraReason;
  if (reason && REQUIRE_KERNEL) throw new Error(`WITNESS_REQUIRE_KERNEL=1 but ${what} cannot run here: ${reason}`);
  return { skip: reason !== null };
}
