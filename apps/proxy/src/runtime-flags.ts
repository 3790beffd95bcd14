import cluster from 'node:cluster';
import { isSea } from 'node:sea';

/**
 * V8 settings the proxy runs with unless the operator chose their own. A proxy allocates
 * short-lived objects at a high rate; left alone, V8 grows the young generation to 64 MiB
 * under load, which is a third of the process's memory and buys little speed. Capping each
 * semi-space at 16 MiB keeps peak RSS well below that for the same throughput (see
 * bench/README.md).
 */
export const RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

/**
 * Allocator settings the proxy runs with unless the operator chose their own. glibc gives each
 * thread that allocates its own malloc arena; the memory a busy period leaves in them is kept,
 * so RSS drifts upward run after run although the heap is back where it was. Two arenas (the
 * main thread's and one shared by libuv's and V8's helper threads) hold RSS within a few
 * percent across 100 reloads under load (apps/proxy/test/reload-load.e2e.test.ts), where the
 * default drifts by up to 15%. Other C libraries ignore the variable.
 */
export const RUNTIME_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * Restarts the current process in place (same PID, arguments, environment and stdio) with
 * {@link RUNTIME_FLAGS} and {@link RUNTIME_ENV}, since V8 reads heap sizes and glibc its
 * arena limit only at startup. Each is left out when the operator set it themselves
 * (`--max-semi-space-size` on the command line or in `NODE_OPTIONS`; the variable in the
 * environment); nothing happens when `PROXY_RUNTIME_FLAGS=off`, or where `process.execve` does
 * not exist (Windows, Node older than 22.15): the proxy then runs with the defaults.
 *
 * The single executable (`pnpm build:sea`) has no room for Node.js flags on its command line
 * (everything after the binary is the proxy's, and its argv is `[binary, binary, ...arguments]`):
 * it restarts with the same arguments and passes {@link RUNTIME_FLAGS} in `NODE_OPTIONS`, after
 * the operator's own options.
 *
 * A cluster worker (`proxy.workers` > 1) never restarts itself: the primary relaunched before
 * forking, and its workers inherit its flags (`execArgv`) and environment.
 */
export function relaunchWithRuntimeFlags(): void {
  if (cluster.isWorker || typeof process.execve !== 'function' || process.env.PROXY_RUNTIME_FLAGS === 'off') return;
  const given = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  const flags = given.includes('--max-semi-space-size') ? [] : RUNTIME_FLAGS;
  const env = Object.fromEntries(Object.entries(RUNTIME_ENV).filter(([name]) => process.env[name] === undefined));
  // The relaunched process carries both, so this also ends the recursion.
  if (flags.length === 0 && Object.keys(env).length === 0) return;
  let args = [...flags, ...process.execArgv, ...process.argv.slice(1)];
  if (isSea()) {
    args = process.argv.slice(2);
    if (flags.length > 0) env.NODE_OPTIONS = [process.env.NODE_OPTIONS ?? '', ...flags].join(' ').trim();
  }
  try {
    process.execve(process.execPath, [process.execPath, ...args], { ...process.env, ...env });
  } catch {
    // execve refused (e.g. a seccomp policy): carry on with the defaults.
  }
}
