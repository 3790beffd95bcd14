/**
 * One worker process of a proxy cluster (`proxy.workers` > 1): the same proxy a single process
 * runs (`startProxy`), with its listeners shared through the primary (node:cluster), its log
 * lines sent to the primary (`worker-log-channel.ts`), and its metrics, secret state, reloads
 * and status answered over IPC for the primary's metrics endpoint and management API.
 */
import cluster from 'node:cluster';
import type { AnswerMessage, QueryMessage, ReadyMessage } from './cluster-messages.js';
import { messageType, OWN_ADDRESSES_ENV, serializeError } from './cluster-messages.js';
import type { ReloadTrigger } from './reloader.js';
import { serveUntilSignal } from './serve.js';
import type { CommandLineConfig } from './config-loader.js';
import { startProxy, type RunningProxy } from './server.js';
import { WorkerLogChannel, type LogBatchMessage } from './worker-log-channel.js';

/**
 * Runs this process as a cluster worker until SIGTERM or SIGINT (which the primary sends on
 * its own shutdown): resolves with the exit code, as `serveUntilSignal` does. SIGHUP reloads,
 * as in a single process; the primary asks for reloads over IPC instead.
 */
export function runClusterWorker(config: CommandLineConfig): Promise<number> {
  const send = (message: LogBatchMessage | AnswerMessage | ReadyMessage, callback?: (error: Error | null) => void): void => {
    // Always with a callback: a channel that closed meanwhile (the primary is gone) then fails
    // this send quietly instead of emitting an 'error' nobody listens to.
    if (process.connected && process.send !== undefined) process.send(message, undefined, undefined, (err: Error | null) => callback?.(err));
    else callback?.(null);
  };
  const logDestination = new WorkerLogChannel(send);
  const ownAddresses = JSON.parse(process.env[OWN_ADDRESSES_ENV] ?? '[]') as { address: string; port: number }[];
  return serveUntilSignal(async () => {
    const running = await startProxy({ commandLineConfig: config, logDestination, clusterWorker: { id: cluster.worker?.id ?? 0, ownAddresses } });
    process.on('message', (message: unknown) => {
      if (messageType(message) !== 'proxy:query') return;
      const { id, query, trigger } = message as QueryMessage;
      // The lines the query logged (a reload's outcome) reach the primary before its answer.
      const reply = (message: AnswerMessage): void => logDestination.flush(() => send(message));
      answer(running, query, trigger ?? 'api').then(
        (value) => reply({ type: 'proxy:answer', id, ok: true, value }),
        (err: unknown) => reply({ type: 'proxy:answer', id, ok: false, error: serializeError(err) }),
      );
    });
    // Its "listening" lines reach the primary before the ready message does (one ordered channel).
    logDestination.flush(() => send({ type: 'proxy:ready' }));
    return running;
  }, 'proxy');
}

function answer(running: RunningProxy, query: QueryMessage['query'], trigger: ReloadTrigger): Promise<unknown> {
  switch (query) {
    case 'metrics':
      return running.metricsText();
    case 'secrets':
      return Promise.resolve({ pending: running.pendingSecrets(), unavailable: running.unavailableSecrets() });
    case 'reload':
      // With the log level the reload applied, which the primary's own lines follow.
      return running.reload(trigger).then((outcome) => ({ ...outcome, log_level: running.logger.level }));
    case 'status':
      return Promise.resolve(running.status());
  }
}
