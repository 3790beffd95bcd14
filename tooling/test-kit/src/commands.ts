import { spawnSync } from 'node:child_process';
import { TestRunner } from 'vitest';

const found = new Map<string, boolean>();

/** Whether `command` can be run from PATH (looked up once per process). */
export function hasCommand(command: string): boolean {
  let ok = found.get(command);
  if (ok === undefined) {
    ok = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' }).status === 0;
    found.set(command, ok);
  }
  return ok;
}

/**
 * Skips the running test when `command` is not on PATH: the real clients the end-to-end tests
 * drive (curl, openssl) are installed by `.ci/run`, while the README's test command must pass
 * on a machine with only Node and npm. The report gives the reason. Outside a test (in a hook)
 * it throws instead, with the same reason; gate such a suite with `describe.skipIf(!hasCommand(...))`.
 */
export function requireCommand(command: string): void {
  if (hasCommand(command)) return;
  const reason = `${command} is not installed (.ci/run installs it)`;
  TestRunner.getCurrentTest()?.context.skip(reason);
  throw new Error(reason);
}
