import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Kernel tests share one machine's tracepoints; keep files serial so
    // timing-sensitive sensor tests don't starve each other on 2 cores.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // `witness run` in tests loads its own sensor: a daemon some other suite (or helper) started
    // must not capture it; test/kernel/resident.test.ts turns the resident path back on for its runs
    env: { WITNESS_RESIDENT: 'off' },
  },
});
