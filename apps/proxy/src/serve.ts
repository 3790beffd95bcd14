import type { RunningProxy } from './server.js';
import { reportStartupError } from './startup-error.js';

/** How long in-flight requests may run after SIGTERM/SIGINT before the process exits. */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Starts a proxy and serves until SIGTERM or SIGINT, then stops accepting, lets in-flight
 * requests finish for up to 10 seconds and resolves with the exit code (0, or 1 when startup
 * or shutdown failed; startup failures are printed under `command`'s name).
 */
export async function serveUntilSignal(start: () => Promise<RunningProxy>, command: string): Promise<number> {
  let proxy;
  try {
    proxy = await start();
  } catch (err) {
    return reportStartupError(err, command);
  }
  const running = proxy;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      running.logger.info({ signal, grace_ms: SHUTDOWN_GRACE_MS }, 'shutting down: no new connections, finishing in-flight requests');
      running
        .close(SHUTDOWN_GRACE_MS)
        .then(() => {
          running.logger.info('stopped');
          running.logger.flush(() => resolve(0));
        })
        .catch((err: unknown) => {
          running.logger.error({ error_class: err instanceof Error ? err.name : typeof err }, 'error while shutting down');
          running.logger.flush(() => resolve(1));
        });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
