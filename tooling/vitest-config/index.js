// Shared vitest settings for every package: tests run against the packages' TypeScript
// sources (the `@proxy/source` export condition: a plain `source` would also pick up the
// TypeScript sources some dependencies publish), in forked processes, with generous timeouts
// for the end-to-end suites that start real listeners.
import { defineProject as vitestDefineProject } from 'vitest/config';

/**
 * @param {string} name project name shown in the test report
 * @param {import('vitest/config').UserWorkspaceConfig['test']} [test] overrides
 */
export function defineProject(name, test = {}) {
  return vitestDefineProject({
    resolve: { conditions: ['@proxy/source'] },
    ssr: { resolve: { conditions: ['@proxy/source'] } },
    test: {
      name,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      pool: 'forks',
      testTimeout: 30_000,
      hookTimeout: 30_000,
      ...test,
    },
  });
}
