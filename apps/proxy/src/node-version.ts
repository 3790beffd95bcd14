/**
 * The Node.js version check the executables run first, before they load anything that needs a
 * recent Node (`node:tls` `getCACertificates`, for one, is a missing export before 22.19, which
 * fails at import time with a SyntaxError). This module imports nothing and uses only syntax
 * and APIs that any Node able to load ES modules has, so the check itself runs on old Node.
 */

/** The oldest supported Node.js, as `[major, minor]`: 22.19 (the 22 and 24 LTS lines, and 23). */
export const MINIMUM_NODE_VERSION: readonly [number, number] = [22, 19];

/**
 * Whether `version` (`process.version` like `v22.19.0`, or `22.19.0`) is at least
 * {@link MINIMUM_NODE_VERSION}. A string that does not start with `major.minor` is refused.
 */
export function isSupportedNodeVersion(version: string): boolean {
  const match = /^v?(\d+)\.(\d+)/.exec(version);
  if (match === null) return false;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  const [minMajor, minMinor] = MINIMUM_NODE_VERSION;
  return major > minMajor || (major === minMajor && minor >= minMinor);
}

/**
 * The one line `command` prints when it cannot run on Node `version`, naming the version it
 * needs and the one found; undefined when the version is supported.
 */
export function unsupportedNodeMessage(command: string, version: string): string | undefined {
  if (isSupportedNodeVersion(version)) return undefined;
  const [minMajor, minMinor] = MINIMUM_NODE_VERSION;
  return `${command}: Node.js >= ${minMajor}.${minMinor} is required (found ${version}); install Node.js 22 or 24 LTS, or run it through the repository's toolchain wrapper ./nodew`;
}

/**
 * Refuses to go on under an unsupported Node: prints {@link unsupportedNodeMessage} to stderr,
 * sets exit code 1 and returns false. Returns true when the running Node is supported.
 */
export function checkNodeVersion(command: string): boolean {
  const message = unsupportedNodeMessage(command, process.version);
  if (message === undefined) return true;
  process.stderr.write(`${message}\n`);
  process.exitCode = 1;
  return false;
}
