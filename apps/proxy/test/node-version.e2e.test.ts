import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { delimiter, join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { awsJwtBinPath, cliPath, requireBuiltCli, runCommand } from './support/proxy-process.js';

// The built executables on a Node.js too old for them: one clear line and exit 1, instead of the
// SyntaxError an import of a recent `node:` API raises. The old Node is the machine's own, found
// on PATH outside the toolchain wrapper's `.toolchain/` (which puts a recent Node first).

/** A Node binary and its `process.version`. */
interface NodeBinary {
  readonly path: string;
  readonly version: string;
}

/** The version `node` reports, or undefined when it does not run. */
function versionOf(node: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(node, ['-p', 'process.version'], { encoding: 'utf8', timeout: 10_000 }, (error, stdout) => resolve(error === null ? stdout.trim() : undefined));
  });
}

/** Older than 22.19, read independently of the code under test. */
function olderThanMinimum(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  return major < 22 || (major === 22 && minor < 19);
}

/** The first `node` on PATH, outside `.toolchain/`, that is older than 22.19. */
async function findOldNode(): Promise<NodeBinary | undefined> {
  const seen = new Set<string>([await realpath(process.execPath)]);
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '' || dir.split(sep).includes('.toolchain')) continue;
    const candidate = await realpath(join(dir, 'node')).catch(() => undefined);
    if (candidate === undefined || seen.has(candidate)) continue;
    seen.add(candidate);
    const version = await versionOf(candidate);
    if (version !== undefined && olderThanMinimum(version)) return { path: candidate, version };
  }
  return undefined;
}

const oldNode = await findOldNode();
const noOldNode = 'no Node.js older than 22.19 on PATH outside .toolchain/ (src/node-version.test.ts covers the check itself)';

describe.each([
  { command: 'proxy', bin: cliPath, args: ['--version'] },
  { command: 'aws-outbound-jwt-proxy', bin: awsJwtBinPath, args: ['--upstream-host=api.example.test', '--token-audience=https://api.example.test'] },
])('$command on an old Node.js', ({ command, bin, args }) => {
  it('prints one line naming the Node.js needed and the one found, and exits 1', async (ctx) => {
    if (oldNode === undefined) return ctx.skip(noOldNode);
    requireBuiltCli();
    const result = await runCommand(oldNode.path, [bin, ...args], { PATH: process.env.PATH ?? '' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const version = oldNode.version.replaceAll('.', '\\.');
    expect(result.stderr).toMatch(new RegExp(`^${command}: Node\\.js >= 22\\.19 is required \\(found ${version}\\); [^\\n]*\\n$`));
    expect(result.stderr).not.toMatch(/SyntaxError|^\s+at /m);
  });
});
