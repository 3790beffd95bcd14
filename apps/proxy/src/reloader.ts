import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { ConfigError } from '@proxy/core';
import type { Pipeline } from '@proxy/core';
import type { ProxyConfig } from '@proxy/config';
import type { Logger as PinoLogger } from 'pino';
import { configWarnings } from './config-warnings.js';
import { RETIRE_DRAIN_TIMEOUT_MS, type Generation } from './generation.js';
import { loadProxyConfig, type CommandLineConfig, type ConfigText, type LoadedProxyConfig } from './config-loader.js';

/** What a successful reload did. */
export interface ReloadOutcome {
  /** The generation now serving. */
  readonly generation: number;
  /** Settings the new file changes that a reload does not re-apply (see {@link ignoredSettings}). */
  readonly ignored: readonly string[];
}

/** The management API's `GET /v1/status`. */
export interface ReloadStatus {
  readonly config_file: string;
  /** SHA-256 (hex) of the config text serving now. */
  readonly config_hash: string;
  readonly config_generation: number;
  /** When the serving generation was loaded (ISO 8601). */
  readonly loaded_at: string;
  /** When the last reload was tried, and how it went; null before any. */
  readonly last_reload_at: string | null;
  readonly last_reload_result: 'ok' | 'failed' | null;
  /**
   * With `proxy.workers` above 1: each serving worker's own status (the fields above are the
   * first one's). They differ when a reload failed in some workers only, or when a replacement
   * worker read a file that changed since.
   */
  readonly workers?: readonly WorkerReloadStatus[];
}

/** One worker's {@link ReloadStatus}, with its cluster id and pid. */
export type WorkerReloadStatus = Omit<ReloadStatus, 'workers'> & { readonly worker: number; readonly pid: number | undefined };

/** How a reload came about, for the log. */
export type ReloadTrigger = 'api' | 'signal';

/** The sections a reload re-applies; any other change is ignored (and named). */
const RELOADED_SECTIONS = new Set(['transforms', 'mcp', 'mcp_gateway', 'log']);

/**
 * The settings `next` changes that a reload cannot re-apply: `log.audit_format`,
 * `log.max_backlog_bytes`, and every
 * section but `transforms`, `mcp`, `mcp_gateway` and `log` (listeners, body limits, timeouts, the upstream guard, TLS and its CA, DNS,
 * metrics, the management API itself). Named `section.field` (or `section` when the whole
 * section appears or goes).
 */
export function ignoredSettings(current: ProxyConfig, next: ProxyConfig): string[] {
  const out: string[] = [];
  const a = current as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  // The log's format and backlog bound are fixed when the process logger is made; only its level is re-applied.
  if (current.log.audit_format !== next.log.audit_format) out.push('log.audit_format');
  if (current.log.max_backlog_bytes !== next.log.max_backlog_bytes) out.push('log.max_backlog_bytes');
  for (const section of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (RELOADED_SECTIONS.has(section) || isDeepStrictEqual(a[section], b[section])) continue;
    const before = a[section];
    const after = b[section];
    if (!isObject(before) || !isObject(after)) {
      out.push(section);
      continue;
    }
    for (const field of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
      if (!isDeepStrictEqual(before[field], after[field])) out.push(`${section}.${field}`);
    }
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Where a config can be read again: a file path, or the command line's location (a file or `s3://` URL) with its `IRON_*` environment. */
export type ReloadableSource = string | CommandLineConfig;

/**
 * Reads and loads a config; also returns the SHA-256 of the document it parsed (after any
 * `IRON_*` overrides), the `config_hash` of `GET /v1/status`.
 */
export async function loadConfigSnapshot(source: ReloadableSource | ConfigText): Promise<{ loaded: LoadedProxyConfig; hash: string }> {
  const loaded = await loadProxyConfig(source);
  return { loaded, hash: createHash('sha256').update(JSON.stringify(loaded.document.data) ?? '').digest('hex') };
}

/** The source a reload reads again, or undefined when there is none (config text, or environment only). */
export function reloadableSource(source: ReloadableSource | ConfigText): ReloadableSource | undefined {
  if (typeof source === 'string') return source;
  if ('text' in source || source.location === undefined) return undefined;
  return source;
}

/** What the reloader needs from the running proxy. */
export interface ReloaderOptions {
  /** The config re-read on each reload; undefined when the config came as text or from the environment only (no reload then). */
  readonly source: ReloadableSource | undefined;
  readonly initial: Generation;
  /** Builds generation `number` from a loaded config (secrets fetched, transforms created). */
  readonly build: (loaded: LoadedProxyConfig, number: number, hash: string) => Promise<Generation>;
  /** Swaps the engine's pipeline; returns the previous one. */
  readonly setPipeline: (pipeline: Pipeline) => Pipeline | undefined;
  readonly logger: PinoLogger;
}

/**
 * Live reload: re-reads the config file, validates all of it and builds a whole new generation
 * before swapping it in with one reference; requests in flight finish on the generation they
 * started with, whose transforms close after its last request (at most
 * {@link RETIRE_DRAIN_TIMEOUT_MS}). Reloads run one at a time, in the order asked. A reload
 * that fails leaves the serving generation untouched.
 */
export class Reloader {
  readonly #options: ReloaderOptions;
  #current: Generation;
  #loadedAt = new Date();
  #lastReloadAt: Date | undefined;
  #lastResult: 'ok' | 'failed' | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #retiring = new Set<Promise<void>>();

  constructor(options: ReloaderOptions) {
    this.#options = options;
    this.#current = options.initial;
  }

  /** The generation serving new requests. */
  get current(): Generation {
    return this.#current;
  }

  /**
   * Reloads once the reloads asked before are done. Rejects with a `ConfigError` listing every
   * problem (file, line, field) when the new config is invalid or cannot be built, with another
   * error otherwise; in both cases nothing was swapped.
   */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const run = this.#queue.then(() => this.#reload(trigger));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  status(): ReloadStatus {
    return {
      config_file: this.#current.loaded.document.file,
      config_hash: this.#current.hash,
      config_generation: this.#current.number,
      loaded_at: this.#loadedAt.toISOString(),
      last_reload_at: this.#lastReloadAt?.toISOString() ?? null,
      last_reload_result: this.#lastResult ?? null,
    };
  }

  /** Retires the serving generation and waits for every generation still retiring (shutdown). */
  async close(): Promise<void> {
    await this.#queue;
    await Promise.all([this.#current.retire(), ...this.#retiring]);
  }

  async #reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const logger = this.#options.logger;
    this.#lastReloadAt = new Date();
    try {
      const source = this.#options.source;
      if (source === undefined) {
        throw new ConfigError([{ path: '', message: 'reload is unavailable: the configuration was not read from a file' }]);
      }
      const { loaded, hash } = await loadConfigSnapshot(source);
      const previous = this.#current;
      const next = await this.#options.build(loaded, previous.number + 1, hash);
      this.#options.setPipeline(next.pipeline);
      this.#current = next;
      this.#loadedAt = new Date();
      this.#lastResult = 'ok';
      logger.level = loaded.config.log.level;
      const ignored = ignoredSettings(previous.loaded.config, loaded.config);
      for (const w of configWarnings(loaded)) {
        logger.warn({ file: w.file, line: w.line, column: w.column, path: w.path, warning: w.message }, 'config warning');
      }
      if (ignored.length > 0) {
        logger.warn({ ignored_settings: ignored }, `configuration reload does not re-apply ${ignored.join(', ')}: restart the proxy for them`);
      }
      logger.info({ trigger, config_generation: next.number, config_hash: hash }, 'configuration reloaded');
      const retiring = previous.retire(RETIRE_DRAIN_TIMEOUT_MS).then(() => {
        this.#retiring.delete(retiring);
        logger.debug({ config_generation: previous.number }, 'configuration generation retired');
      });
      this.#retiring.add(retiring);
      return { generation: next.number, ignored };
    } catch (err) {
      this.#lastResult = 'failed';
      const errors = err instanceof ConfigError ? err.message.split('\n') : [err instanceof Error ? err.message : String(err)];
      logger.warn({ trigger, config_generation: this.#current.number, errors }, 'configuration reload failed; the running configuration is kept');
      throw err;
    }
  }
}
