/**
 * V8 settings the proxy runs with unless the operator chose their own. A proxy allocates
 * short-lived objects at a high rate; left alone, V8 grows the young generation to 64 MiB
 * under load, which is a third of the process's memory and buys little speed. Capping each
 * semi-space at 16 MiB keeps peak RSS well below that for the same throughput (see
 * bench/README.md).
 */
export const RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

/**
 * Restarts the current process in place (same PID, arguments, environment and stdio) with
 * {@link RUNTIME_FLAGS}, since V8 reads heap sizes only at startup. Does nothing when the
 * operator set `--max-semi-space-size` themselves (on the command line or in `NODE_OPTIONS`),
 * when `PROXY_RUNTIME_FLAGS=off`, or where `process.execve` does not exist (Windows, Node
 * older than 22.15): the proxy then runs with V8's defaults.
 */
export function relaunchWithRuntimeFlags(): void {
  if (typeof process.execve !== 'function' || process.env.PROXY_RUNTIME_FLAGS === 'off') return;
  const given = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  // The relaunched process carries the flag, so this also ends the recursion.
  if (given.includes('--max-semi-space-size')) return;
  try {
    process.execve(process.execPath, [process.execPath, ...RUNTIME_FLAGS, ...process.execArgv, ...process.argv.slice(1)], process.env);
  } catch {
    // execve refused (e.g. a seccomp policy): carry on with V8's defaults.
  }
}
