import { startExternalMemoryPacer, type ExternalMemoryPacer } from './external-memory-pacer.js';
import type { RunningProxy } from './server.js';
import { collectStartupGarbage } from './startup-collection.js';
import { reportStartupError } from './startup-error.js';

/** How long in-flight requests may run after SIGTERM/SIGINT before the process exits. */
export const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Starts a proxy and serves until SIGTERM or SIGINT, then stops accepting, lets in-flight
 * requests finish for up to 10 seconds and resolves with the exit code (0, or 1 when startup
 * or shutdown failed; startup failures are printed under `command`'s name). A repeated
 * SIGTERM or SIGINT during that drain is logged and ignored: it does not cut the in-flight
 * requests short (the drain is bounded anyway). SIGHUP reloads the configuration file meanwhile.
 * Once serving and its log flushed, start-up's garbage is collected (see `collectStartupGarbage`)
 * and young collections start following buffer memory too (see `startExternalMemoryPacer`).
 */
export async function serveUntilSignal(start: () => Promise<RunningProxy>, command: string): Promise<number> {
  // SIGHUP reloads the configuration (the reloader logs how it went). Installed first, so that
  // a SIGHUP during startup is ignored rather than ending the process (Node's default).
  let running: RunningProxy | undefined;
  const onHangup = (): void => {
    if (running === undefined) {
      process.stderr.write(`${command}: SIGHUP before the proxy was serving: ignored\n`);
      return;
    }
    running.reload('signal').catch(() => undefined);
  };
  process.on('SIGHUP', onHangup);
  try {
    running = await start();
  } catch (err) {
    process.off('SIGHUP', onHangup);
    return reportStartupError(err, command);
  }
  // After the "listening" lines are out: the collection blocks the process for ~60 ms, and
  // whoever waits for those lines expects all of them at once.
  let pacer: ExternalMemoryPacer | undefined;
  let stopped = false;
  running.logger.flush(() => {
    if (stopped) return;
    collectStartupGarbage();
    pacer = startExternalMemoryPacer();
  });
  const code = await waitForStop(running);
  stopped = true;
  pacer?.stop();
  return code;
}

/** Serves until SIGTERM or SIGINT, then closes the proxy; resolves with the exit code. */
function waitForStop(running: RunningProxy): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        running.logger.info({ signal }, 'already shutting down: signal ignored, still finishing in-flight requests');
        return;
      }
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
    // Kept installed for the whole drain (not `once`): with no listener left, a second signal
    // would take Node's default action and kill the process mid-request.
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
