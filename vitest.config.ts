import { defineConfig } from 'vitest/config';

// One run over every workspace package; each package's own vitest.config.ts names it.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'tooling/test-kit', 'examples/*'],
  },
});
