import { ConfigError, formatConfigIssues, ProxyError } from '@proxy/core';
import type { ConfigWarning } from './config-warnings.js';

/**
 * Prints a startup failure for a human on stderr, prefixed with the command's name: every
 * config issue on its own line. Returns the exit code (1).
 */
export function reportStartupError(err: unknown, command = 'proxy'): number {
  if (err instanceof ConfigError) {
    const n = err.issues.length;
    process.stderr.write(`${command}: invalid configuration (${n} ${n === 1 ? 'problem' : 'problems'}) [${err.code}]\n`);
    for (const line of err.message.split('\n')) process.stderr.write(`  ${line}\n`);
    return 1;
  }
  if (err instanceof ProxyError) {
    process.stderr.write(`${command}: ${err.message} [${err.code}]\n`);
    return 1;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EADDRINUSE' || e?.code === 'EACCES') {
    process.stderr.write(`${command}: cannot listen: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`${command}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}

/**
 * Prints config warnings for a human on stderr, like the problems of an invalid config but
 * marked as warnings: a count line, then `  warning: file:line:column: path: message` each.
 */
export function reportConfigWarnings(warnings: readonly ConfigWarning[], command = 'proxy'): void {
  if (warnings.length === 0) return;
  const n = warnings.length;
  process.stderr.write(`${command}: configuration ${n === 1 ? 'warning' : 'warnings'} (${n})\n`);
  for (const warning of warnings) process.stderr.write(`  warning: ${formatConfigIssues([warning])}\n`);
}
