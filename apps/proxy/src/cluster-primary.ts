/**
 * The primary process of a proxy cluster (`proxy.workers` > 1, or `--workers`). It serves no
 * proxy traffic itself: it forks the workers (`cluster-worker.ts`), each a whole proxy, whose
 * listeners node:cluster binds once, in the primary, and shares with every worker. The
 * scheduling is `SCHED_NONE`: the primary holds each listening socket and every worker accepts
 * from it directly. So a listener stays open while a worker is replaced, connections waiting
 * in its queue are taken by the other workers (none is lost with the dead one), and
 * `listen(0)` works: every worker's k-th listener on the same address shares one port. The
 * cost: the kernel, not the primary, decides which worker accepts, and nothing guarantees an
 * even spread (Node's documentation reports loads where a few workers took most). Node's round-robin (`NODE_CLUSTER_SCHED_POLICY=rr`, honoured when
 * set) spreads connections evenly, but the primary then accepts every connection and passes
 * it over IPC, and a connection passed to a worker as it dies is left hanging.
 *
 * The primary also owns what must exist once per cluster: the one output stream (workers send
 * their log lines over IPC, `worker-log-channel.ts`), the metrics endpoint (a scrape collects
 * every worker's Prometheus text and merges it, `metrics-merge.ts`; `/readyz` asks the workers
 * for their secrets), the management API (a reload is applied by every worker), signals
 * (SIGHUP reloads every worker; SIGTERM/SIGINT drain them all), and replacing a worker that
 * dies, with a growing delay when replacements keep dying young.
 */
import cluster, { type Worker } from 'node:cluster';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSea } from 'node:sea';
import type { Logger } from '@proxy/core';
import type { Logger as PinoLogger } from 'pino';
import type { AnswerMessage, QueryMessage, WorkerQuery } from './cluster-messages.js';
import { deserializeError, messageType, OWN_ADDRESSES_ENV } from './cluster-messages.js';
import { configWarnings } from './config-warnings.js';
import { forwardListeners } from './forward-listeners.js';
import { createFdDestination, type FlushableDestination } from './log-destination.js';
import { createProcessLog } from './logger.js';
import type { ManagementServer } from './management-server.js';
import { mergePrometheusText, type WorkerExposition } from './metrics-merge.js';
import { primaryProcessExposition } from './primary-metrics.js';
import { MetricsServer, type SecretsState } from './metrics-server.js';
import type { ReloadOutcome, ReloadStatus, ReloadTrigger, WorkerReloadStatus } from './reloader.js';
import { SHUTDOWN_GRACE_MS } from './serve.js';
import type { LoadedProxyConfig } from './config-loader.js';
import { collectStartupGarbage } from './startup-collection.js';
import { reportStartupError } from './startup-error.js';
import { isLogBatch } from './worker-log-channel.js';

/** How long a scrape, `/readyz` or status waits for a worker's answer; a worker that has not answered by then is left out. */
export const QUERY_TIMEOUT_MS = 5_000;

/** How long a reload may take in a worker (it fetches the new generation's secrets). */
const RELOAD_TIMEOUT_MS = 120_000;

/** A worker that served this long before dying is replaced at once; one that died younger counts towards the backoff. */
export const STABLE_AFTER_MS = 10_000;

/** The longest wait before replacing a worker that keeps dying young. */
export const MAX_RESTART_DELAY_MS = 30_000;

/** How long after the drain's grace the primary waits before killing workers that have not exited. */
const KILL_AFTER_GRACE_MS = 5_000;

/** Options of {@link runClusterPrimary}. */
export interface ClusterPrimaryOptions {
  /** The config the primary read and validated before forking (each worker reads the same source again). */
  readonly loaded: LoadedProxyConfig;
  /** How many workers to run (at least 2). */
  readonly workers: number;
}

/**
 * Runs the primary until SIGTERM or SIGINT and all workers have drained; resolves with the exit
 * code: 0 when every worker exited cleanly, 1 when one did not, or when a worker failed to start
 * (a startup failure stops the cluster: it would fail again in every replacement).
 */
export function runClusterPrimary(options: ClusterPrimaryOptions): Promise<number> {
  return new ClusterPrimary(options).run();
}

/**
 * How long to wait before replacing a worker, given how many workers of its slot died in a row
 * within {@link STABLE_AFTER_MS} of starting (this one included): at once for the first, then
 * 1 s, 2 s, 4 s... up to {@link MAX_RESTART_DELAY_MS}, so a worker that cannot stay up does not
 * spin the machine.
 */
export function restartDelayMs(failures: number): number {
  return failures <= 1 ? 0 : Math.min(1_000 * 2 ** (failures - 2), MAX_RESTART_DELAY_MS);
}

interface WorkerState {
  /** Position of the worker among `workers` (a replacement takes its predecessor's). */
  readonly slot: number;
  readonly startedAt: number;
  ready: boolean;
}

interface PendingQuery {
  readonly worker: Worker;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

class ClusterPrimary {
  readonly #options: ClusterPrimaryOptions;
  readonly #sink: FlushableDestination;
  readonly #logger: PinoLogger;
  readonly #workers = new Map<Worker, WorkerState>();
  /** Deaths in a row of young workers, per slot. */
  readonly #failures: number[];
  readonly #queries = new Map<number, PendingQuery>();
  readonly #restarts = new Set<NodeJS.Timeout>();
  /** Each live worker's exposition at the last scrape. */
  readonly #lastExposition = new Map<Worker, WorkerExposition>();
  /** The cumulative metrics of the workers that died, as of the last scrape each answered (one merged exposition). */
  #retired: WorkerExposition | undefined;
  #nextQuery = 0;
  #metrics: MetricsServer | undefined;
  #management: ManagementServer | undefined;
  #starting = true;
  #stopping = false;
  #failed = false;
  #onStartup: ((ok: boolean) => void) | undefined;
  #finish: ((code: number) => void) | undefined;

  constructor(options: ClusterPrimaryOptions) {
    this.#options = options;
    this.#failures = Array.from({ length: options.workers }, () => 0);
    const { config } = options.loaded;
    // One stream for the primary's lines and every worker's batches: each write is whole lines,
    // and the stream writes them in order, so lines never interleave however long they are.
    this.#sink = createFdDestination(config.log.audit_format === 'iron-proxy' ? 2 : 1, config.log.max_backlog_bytes);
    this.#logger = createProcessLog(config.log.level, config.log.audit_format, this.#sink).logger;
  }

  async run(): Promise<number> {
    const done = new Promise<number>((resolve) => {
      this.#finish = resolve;
    });
    // Installed first: a signal during startup is handled rather than taking Node's default action.
    const stop = (signal: NodeJS.Signals): void => this.#stop(signal);
    const hangup = (): void => {
      if (this.#starting || this.#stopping) {
        this.#logger.warn(this.#stopping ? 'SIGHUP while shutting down: ignored' : 'SIGHUP before the workers were serving: ignored');
        return;
      }
      this.#reloadAll('signal').catch(() => undefined);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', hangup);
    const { document, config, registry } = this.#options.loaded;
    for (const w of configWarnings({ document, config, registry })) {
      this.#logger.warn({ file: w.file, line: w.line, column: w.column, path: w.path, warning: w.message }, 'config warning');
    }
    const own: { kind: 'metrics' | 'management'; address: string; port: number }[] = [];
    try {
      const metrics = forwardListeners(config, document).metrics;
      if (metrics !== undefined) {
        this.#metrics = new MetricsServer({ ...metrics, secretsState: () => this.#secretsState() }, (req, res) => void this.#scrape(req, res));
        own.push({ kind: 'metrics', ...(await this.#metrics.listen()) });
      }
      if (config.management !== undefined) {
        // Loaded only when configured: the management API is a Fastify app.
        const { ManagementServer } = await import('./management-server.js');
        this.#management = new ManagementServer(
          {
            listen: config.management.listen,
            apiKey: process.env[config.management.api_key_env] ?? '',
            logger: this.#logger.child({ component: 'management' }) as unknown as Logger,
          },
          { reload: () => this.#reloadAll('api'), status: () => this.#status() },
        );
        own.push({ kind: 'management', ...(await this.#management.listen()) });
      }
    } catch (err) {
      await this.#closeListeners();
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.off('SIGHUP', hangup);
      return reportStartupError(err);
    }

    // Shared listening sockets unless the operator chose Node's round-robin (see the module comment).
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
    // Workers run the same executable with the same arguments and Node.js flags (the runtime
    // flags were settled in this process before it got here), and know the primary's listeners.
    // The single executable takes no Node.js flags on its command line (its runtime flags are in
    // NODE_OPTIONS, which the workers inherit) and needs a script path: its own, which sea.ts drops.
    cluster.setupPrimary(isSea() ? { exec: process.execPath, args: process.argv.slice(2), execArgv: [] } : { execArgv: process.execArgv });
    const env = { [OWN_ADDRESSES_ENV]: JSON.stringify(own.map(({ address, port }) => ({ address, port }))) };
    const started = new Promise<boolean>((resolve) => {
      this.#onStartup = resolve;
    });
    for (let slot = 0; slot < this.#options.workers; slot++) this.#fork(slot, env);
    if (await started) {
      this.#starting = false;
      for (const a of own) this.#logger.info({ listener: a.kind, address: `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` }, 'listening');
      this.#logger.info({ workers: this.#options.workers }, 'all workers serving');
      // As a single process does once serving (serve.ts): after the lines above are out.
      this.#logger.flush(() => collectStartupGarbage());
    } else if (!this.#stopping) {
      this.#failed = true;
      this.#stop('startup failure');
    }
    const code = await done;
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    process.off('SIGHUP', hangup);
    return code;
  }

  #fork(slot: number, env: Record<string, string>): void {
    const worker = cluster.fork(env);
    this.#workers.set(worker, { slot, startedAt: Date.now(), ready: false });
    worker.on('message', (message: unknown) => this.#onMessage(worker, message));
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.#onExit(worker, code, signal, env));
  }

  #onMessage(worker: Worker, message: unknown): void {
    if (isLogBatch(message)) {
      this.#sink.write(message.lines);
      return;
    }
    const type = messageType(message);
    if (type === 'proxy:ready') {
      const state = this.#workers.get(worker);
      if (state === undefined) return;
      state.ready = true;
      this.#logger.info({ worker: worker.id, pid: worker.process.pid }, 'worker serving');
      if (this.#starting && [...this.#workers.values()].every((s) => s.ready) && this.#workers.size === this.#options.workers) this.#onStartup?.(true);
    } else if (type === 'proxy:answer') {
      const answer = message as AnswerMessage;
      const pending = this.#queries.get(answer.id);
      if (pending === undefined) return;
      this.#queries.delete(answer.id);
      clearTimeout(pending.timer);
      if (answer.ok) pending.resolve(answer.value);
      else pending.reject(deserializeError(answer.error));
    }
  }

  #onExit(worker: Worker, code: number | null, signal: NodeJS.Signals | null, env: Record<string, string>): void {
    const state = this.#workers.get(worker);
    this.#workers.delete(worker);
    this.#retire(worker);
    for (const [id, pending] of this.#queries) {
      if (pending.worker !== worker) continue;
      this.#queries.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new Error(`worker ${worker.id} exited`));
    }
    if (state === undefined) return;
    const fields = { worker: worker.id, pid: worker.process.pid, exit_code: code, signal };
    if (this.#stopping) {
      if (code !== 0) this.#failed = true;
      this.#logger.info(fields, 'worker stopped');
      if (this.#workers.size === 0) this.#finishStop();
      return;
    }
    if (this.#starting) {
      // Its own error is on stderr; a startup failure would only repeat in a replacement.
      this.#logger.error(fields, 'worker failed to start');
      this.#onStartup?.(false);
      return;
    }
    const young = Date.now() - state.startedAt < STABLE_AFTER_MS;
    const failures = young ? (this.#failures[state.slot] ?? 0) + 1 : 1;
    this.#failures[state.slot] = failures;
    const delay = restartDelayMs(failures);
    this.#logger.error({ ...fields, restart_in_ms: delay }, 'worker exited unexpectedly: starting a replacement');
    const timer = setTimeout(() => {
      this.#restarts.delete(timer);
      if (!this.#stopping) this.#fork(state.slot, env);
    }, delay);
    this.#restarts.add(timer);
  }

  /** Asks one worker a question; rejects when it does not answer in time or exits first. */
  #query(worker: Worker, query: WorkerQuery, trigger?: ReloadTrigger): Promise<unknown> {
    const id = ++this.#nextQuery;
    const timeoutMs = query === 'reload' ? RELOAD_TIMEOUT_MS : QUERY_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#queries.delete(id);
        reject(new Error(`worker ${worker.id} did not answer "${query}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#queries.set(id, { worker, resolve, reject, timer });
      const message: QueryMessage = { type: 'proxy:query', id, query, ...(trigger === undefined ? {} : { trigger }) };
      // With a callback, a channel closing under a dying worker fails this query instead of
      // emitting an 'error' nobody listens to.
      worker.send(message, undefined, (err: Error | null) => {
        if (err === null || !this.#queries.has(id)) return;
        this.#queries.delete(id);
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /**
   * Keeps the counters and histograms a dead worker had at the last scrape, so the merged sums
   * never go down when a worker is replaced (what it counted after that scrape is lost). All
   * dead workers fold into one exposition: the memory does not grow with each crash.
   */
  #retire(worker: Worker): void {
    const last = this.#lastExposition.get(worker);
    this.#lastExposition.delete(worker);
    if (last === undefined) return;
    const retired = [{ ...last, retired: true }, ...(this.#retired === undefined ? [] : [this.#retired])];
    this.#retired = { worker: 0, text: mergePrometheusText(retired), retired: true };
  }

  #readyWorkers(): Worker[] {
    return [...this.#workers].filter(([, s]) => s.ready).map(([w]) => w);
  }

  /**
   * Every serving worker's metrics, merged with what the dead ones had counted (see
   * {@link #retire}) and the primary's own process figures; a worker that does not answer in
   * time is left out of this scrape.
   */
  async #scrape(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    const answers = await Promise.all(
      this.#readyWorkers().map((worker) =>
        this.#query(worker, 'metrics').then(
          (text): WorkerExposition | undefined => {
            if (typeof text !== 'string') return undefined;
            const exposition = { worker: worker.id, text };
            if (this.#workers.has(worker)) this.#lastExposition.set(worker, exposition);
            return exposition;
          },
          () => undefined,
        ),
      ),
    );
    const live = answers.filter((a): a is WorkerExposition => a !== undefined);
    // The primary's own figures come after the workers', whose help texts and order lead.
    const primary: WorkerExposition = { worker: 'primary', text: primaryProcessExposition(this.#sink.backlog.droppedLines) };
    const body = mergePrometheusText([...live, ...(this.#retired === undefined ? [] : [this.#retired]), primary]);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
  }

  /** The secrets without a value in any serving worker (each label once). */
  async #secretsState(): Promise<SecretsState> {
    const states = await Promise.all(this.#readyWorkers().map((worker) => this.#query(worker, 'secrets').then((s) => s as SecretsState, () => undefined)));
    const union = (pick: (s: SecretsState) => readonly string[]): string[] => [...new Set(states.flatMap((s) => (s === undefined ? [] : pick(s))))];
    return { pending: union((s) => s.pending), unavailable: union((s) => s.unavailable) };
  }

  /**
   * Reloads every serving worker (each logs its outcome); rejects with the first failure
   * (a `ConfigError` for a bad config, as a single process would), else resolves with the
   * outcome of the first worker, whose new `log.level` the primary's own lines then follow.
   */
  async #reloadAll(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const workers = this.#readyWorkers();
    if (workers.length === 0) throw new Error('no worker is serving');
    const results = await Promise.allSettled(workers.map((worker) => this.#query(worker, 'reload', trigger)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const { log_level: level, ...outcome } = (results[0] as PromiseFulfilledResult<unknown>).value as ReloadOutcome & { log_level: string };
    this.#logger.level = level;
    return outcome;
  }

  /**
   * The management API's status: the first serving worker's, with every serving worker's own
   * under `workers` (a worker that does not answer in time is left out), so generations that
   * differ after a partial reload show.
   */
  async #status(): Promise<ReloadStatus> {
    const answers = await Promise.all(
      this.#readyWorkers().map((worker) =>
        this.#query(worker, 'status').then(
          (status): WorkerReloadStatus => ({ worker: worker.id, pid: worker.process.pid, ...(status as ReloadStatus) }),
          () => undefined,
        ),
      ),
    );
    const workers = answers.filter((a): a is WorkerReloadStatus => a !== undefined);
    const [first] = workers;
    if (first === undefined) throw new Error('no worker is serving');
    const { worker: _worker, pid: _pid, ...status } = first;
    return { ...status, workers };
  }

  /** Drains every worker (each stops accepting and finishes its in-flight requests), then finishes. */
  #stop(reason: NodeJS.Signals | 'startup failure'): void {
    if (this.#stopping) {
      this.#logger.info({ signal: reason }, 'already shutting down: signal ignored, still finishing in-flight requests');
      return;
    }
    this.#stopping = true;
    this.#onStartup?.(false);
    for (const timer of this.#restarts) clearTimeout(timer);
    this.#restarts.clear();
    const cause = reason === 'startup failure' ? { reason } : { signal: reason };
    this.#logger.info({ ...cause, grace_ms: SHUTDOWN_GRACE_MS, workers: this.#workers.size }, 'shutting down: no new connections, workers finishing in-flight requests');
    for (const worker of this.#workers.keys()) worker.process.kill('SIGTERM');
    if (this.#workers.size === 0) {
      this.#finishStop();
      return;
    }
    setTimeout(() => {
      for (const worker of this.#workers.keys()) {
        this.#failed = true;
        this.#logger.error({ worker: worker.id, pid: worker.process.pid }, 'worker still running after the grace period: killed');
        worker.process.kill('SIGKILL');
      }
    }, SHUTDOWN_GRACE_MS + KILL_AFTER_GRACE_MS).unref();
  }

  #finishStop(): void {
    void this.#closeListeners().then(() => {
      this.#logger.info('stopped');
      this.#logger.flush(() => this.#finish?.(this.#failed ? 1 : 0));
    });
  }

  async #closeListeners(): Promise<void> {
    await this.#management?.close();
    await this.#metrics?.close();
  }
}
