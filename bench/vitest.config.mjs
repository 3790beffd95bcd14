import { defineProject } from 'vitest/config';

// The harness's own tests: the figures the README quotes are computed by bench/lib and
// measured by bench/loadgen, so both are checked like any package.
export default defineProject({
  test: {
    name: 'bench',
    include: ['test/**/*.test.mjs'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
