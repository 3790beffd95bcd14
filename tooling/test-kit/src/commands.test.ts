import { beforeAll, describe, expect, it } from 'vitest';
import { hasCommand, requireCommand } from './commands.js';

describe('hasCommand', () => {
  it('finds a command on PATH and not one that does not exist', () => {
    expect(hasCommand('sh')).toBe(true);
    expect(hasCommand('no-such-command-7f3a9c')).toBe(false);
  });

  it('takes a name as one word, never as shell text', () => {
    expect(hasCommand('sh; exit 0')).toBe(false);
  });
});

describe('requireCommand', () => {
  it('returns when the command is there', () => {
    expect(() => requireCommand('sh')).not.toThrow();
  });

  // Reported as skipped, with the reason, when it works; a failure here means it threw instead.
  it('skips the running test when the command is missing', () => {
    requireCommand('no-such-command-7f3a9c');
    expect.unreachable('requireCommand should have skipped this test');
  });
});

describe('requireCommand in a hook', () => {
  let thrown: unknown;
  beforeAll(() => {
    try {
      requireCommand('no-such-command-7f3a9c');
    } catch (error) {
      thrown = error;
    }
  });

  it('throws with the reason, since a hook has no test to skip', () => {
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toBe('no-such-command-7f3a9c is not installed (.ci/run installs it)');
  });
});
