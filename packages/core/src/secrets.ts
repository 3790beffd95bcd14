import { durationSchema, parseDuration } from './duration.js';
import { ErrorCodes, ProxyError } from './errors.js';
import type { JsonSchema } from './schema.js';
import { SecretRedactor } from './redactor.js';
import type { Clock, HttpClient, Logger } from './transform.js';

/** The `source` block of a secret, as written in config: `{ type: env, var: X, json_key?, ttl? }`. */
export interface SecretSourceConfig {
  readonly type: string;
  /** Parse the fetched value as JSON and use this field. */
  readonly json_key?: string;
  /** Re-fetch interval (duration string); absent or `0` reads once. */
  readonly ttl?: string;
  /** How long to wait before trying again after a fetch failed (duration string, default `1m`). */
  readonly failure_ttl?: string;
  readonly [field: string]: unknown;
}

/** What a secret backend gets to fetch with. */
export interface SecretSourceContext {
  readonly logger: Logger;
  /** The proxy's guarded client (it refuses `upstream_deny_cidrs`); backends on control-plane addresses use their own. */
  readonly http: HttpClient;
  /**
   * The environment a backend reads its settings and credentials from (endpoints, tokens, AWS
   * variables): the proxy's `process.env` in the app, anything a test or an embedding gives.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths in a source's config resolve from: the config file's directory in the app. */
  readonly baseDir: string;
  /**
   * Register every credential the backend reads to fetch with (an API token, a secret key) so
   * logs and audit records never show it. Fetched values are registered by the resolver.
   */
  readonly redactor: SecretRedactor;
}

/** Fetches the current raw value of one configured secret. */
export interface SecretFetcher {
  /**
   * Fetches the value. `signal` aborts after {@link SECRET_FETCH_TIMEOUT_MS} or when the secret
   * is closed; it is never tied to a request. Reject with an error whose message says what
   * failed (`ResourceNotFoundException: ...`, `the file is empty`), never a value or a
   * credential: the resolver reports it as `secret <label> (<type>) could not be fetched: <message>`.
   */
  fetch(signal: AbortSignal): Promise<string>;
  /** Releases what the fetcher holds (a client's sockets); called when the secret is closed. */
  close?(): void;
}

/**
 * A secret backend (`env` here; `aws_sm`, `1password_connect`, `file`, ... in `@proxy/source-*`,
 * or a third-party package named by its package name). `json_key`, `ttl` and `failure_ttl` are
 * handled once, by the resolver, for every backend.
 */
export interface SecretSourceDefinition<Config extends SecretSourceConfig = SecretSourceConfig> {
  /** The `type` value that selects this backend (a third-party backend's is its package name). */
  readonly type: string;
  /** JSON Schema of the backend's own fields (not `type`, `json_key`, `ttl`, `failure_ttl`). */
  readonly properties: Readonly<Record<string, JsonSchema>>;
  /** Which of the backend's own fields are required. */
  readonly required: readonly string[];
  /** A label naming the secret in audit records and logs (never its value), e.g. the env var. */
  label(config: Config): string;
  /** Builds the fetcher of one configured secret; called once per `open`, without fetching. */
  create(config: Config, context: SecretSourceContext): SecretFetcher;
}

/** True when `value` has the shape of a {@link SecretSourceDefinition} (for loading third-party sources). */
export function isSecretSourceDefinition(value: unknown): value is SecretSourceDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.type === 'string' &&
    v.type.length > 0 &&
    typeof v.properties === 'object' &&
    v.properties !== null &&
    Array.isArray(v.required) &&
    typeof v.label === 'function' &&
    typeof v.create === 'function'
  );
}

/**
 * A resolved secret. `value()` is synchronous so the request path never waits on a backend
 * once the first fetch has settled; before that the handle is `pending`.
 */
export interface SecretHandle {
  /** Names the secret for audit records: the env var name, the secret id, ... */
  readonly label: string;
  /** The source's `type` (`env`, `aws_sm`, ...). */
  readonly type: string;
  /** True until the first fetch has succeeded or failed (`available` is false meanwhile). */
  readonly pending: boolean;
  /**
   * True once a value was fetched. A secret whose fetches all failed so far is unavailable:
   * requests that need it get the transform's documented failure, and the resolver keeps
   * trying every `failure_ttl`.
   */
  readonly available: boolean;
  /**
   * Settles when the first fetch has succeeded or failed (at most
   * {@link SECRET_FETCH_TIMEOUT_MS}, or at `close()`); never rejects. Waiting on it never
   * cancels the fetch, so a request that gives up cannot abort it.
   */
  ready(): Promise<void>;
  /**
   * The current value. Throws a `ProxyError` (`PROXY_ERR_SECRET_UNAVAILABLE`, status 502)
   * while pending and when no value could be fetched yet.
   */
  value(): string;
  /** Stops background refresh and aborts a fetch in flight. */
  close(): void;
}

/** Opens secrets for transforms. */
export interface SecretResolver {
  /**
   * Opens a source and returns at once: the first fetch starts in the background (see
   * {@link SecretHandle.ready}) and is bounded by {@link SECRET_FETCH_TIMEOUT_MS}. The value
   * gets `json_key` applied and, with a `ttl`, is refreshed in the background, the last good
   * value kept while a refresh fails (retrying at half the ttl). A failed first fetch leaves
   * the handle unavailable, is logged (by label), and is tried again every `failure_ttl`
   * (default 1m). Rejects only for a source type nobody registered.
   */
  open(source: SecretSourceConfig): Promise<SecretHandle>;
  /** Every secret opened so far and not closed, for readiness checks. */
  handles(): readonly SecretHandle[];
}

/** The built-in `env` backend: `{ type: env, var: NAME }` reads the proxy's environment. */
export const envSource: SecretSourceDefinition<SecretSourceConfig & { readonly var: string }> = {
  type: 'env',
  properties: { var: { type: 'string', minLength: 1 } },
  required: ['var'],
  label: (config) => config.var,
  create(config, context) {
    return {
      fetch() {
        const value = context.env[config.var];
        if (value === undefined || value === '') {
          return Promise.reject(secretUnavailable(`environment variable ${config.var} is not set or empty`));
        }
        return Promise.resolve(value);
      },
    };
  },
};

/** `$id` of the composed secret-source schema; transforms reference it with {@link secretSourceRef}. */
export const SECRET_SOURCE_SCHEMA_ID = 'https://schemas.proxy.local/secret-source.json';

/** Use in a transform schema wherever a secret source goes: `source: secretSourceRef`. */
export const secretSourceRef: JsonSchema = Object.freeze({ $ref: SECRET_SOURCE_SCHEMA_ID });

/**
 * Composes the schema of a `source` block from the registered backends: discriminated by
 * `type`, each with `json_key`, `ttl` and its own fields, unknown fields rejected.
 */
export function secretSourceSchema(sources: readonly SecretSourceDefinition[]): JsonSchema {
  const types = sources.map((s) => s.type);
  return {
    type: 'object',
    // Listing the known types here gives an unknown `type` an error naming them.
    properties: { type: { type: 'string', enum: types } },
    required: ['type'],
    discriminator: { propertyName: 'type' },
    oneOf: sources.map((source) => ({
      type: 'object',
      properties: {
        ...source.properties,
        type: { const: source.type },
        json_key: { type: 'string', minLength: 1 },
        ttl: durationSchema,
        failure_ttl: durationSchema,
      },
      required: ['type', ...source.required],
      additionalProperties: false,
    })),
  };
}

/** Options of {@link createSecretResolver}. */
export interface SecretResolverOptions {
  readonly sources: readonly SecretSourceDefinition[];
  readonly logger: Logger;
  readonly clock: Clock;
  readonly http: HttpClient;
  /** Aborting stops every background refresh. */
  readonly signal: AbortSignal;
  /** Environment backends read (the `env` backend's variables, the others' endpoints and credentials); defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths in source configs resolve from (the config file's directory); defaults to the working directory. */
  readonly baseDir?: string;
  /** Every value fetched (and every credential a backend reads) is registered here, so that logs and audit records never show it. */
  readonly redactor?: SecretRedactor;
}

/** Longest delay `setTimeout` honours (about 24.8 days); longer TTLs refresh at this interval. */
const MAX_TIMER_MS = 2_147_483_647;

/** Longest a fetch may take; no request's cancellation can cut it shorter. */
export const SECRET_FETCH_TIMEOUT_MS = 30_000;

/** Wait before retrying a failed fetch when the source sets no `failure_ttl`. */
export const DEFAULT_FAILURE_TTL_MS = 60_000;

/**
 * Creates the resolver transforms open their secrets with. Error messages and log lines name
 * the secret by its label (env var, secret id), never by value.
 */
export function createSecretResolver(options: SecretResolverOptions): SecretResolver {
  const byType = new Map(options.sources.map((s) => [s.type, s]));
  // Without a redactor to report to, backends still get one to register their credentials with.
  const context: SecretSourceContext = {
    logger: options.logger,
    http: options.http,
    env: options.env ?? process.env,
    baseDir: options.baseDir ?? process.cwd(),
    redactor: options.redactor ?? new SecretRedactor(),
  };
  const open = new Set<SecretHandle>();
  const shortWarned = new Set<string>();
  return {
    handles: () => [...open],
    async open(source) {
      const definition = byType.get(source.type);
      if (definition === undefined) {
        throw new ProxyError(
          ErrorCodes.SECRET_SOURCE_UNKNOWN,
          `unknown secret source type "${source.type}" (known: ${[...byType.keys()].join(', ')})`,
          { reason: 'secret_source_unknown' },
        );
      }
      const label = definition.label(source);
      const ttl = source.ttl === undefined ? 0 : parseDuration(source.ttl);
      const failureTtl = source.failure_ttl === undefined ? DEFAULT_FAILURE_TTL_MS : parseDuration(source.failure_ttl) || DEFAULT_FAILURE_TTL_MS;
      const controller = new AbortController();
      const signal = AbortSignal.any([options.signal, controller.signal]);
      const fetcher = definition.create(source, context);
      const read = async (): Promise<string> => {
        let raw: string;
        try {
          raw = await fetchWithin(fetcher, signal, SECRET_FETCH_TIMEOUT_MS);
        } catch (err) {
          if (err instanceof ProxyError && err.code === ErrorCodes.SECRET_UNAVAILABLE) throw err;
          const detail = err instanceof Error ? err.message : String(err);
          throw secretUnavailable(`secret ${label} (${source.type}) could not be fetched: ${detail}`, err);
        }
        const value = source.json_key === undefined ? raw : extractJsonKey(raw, source.json_key, label);
        if (options.redactor !== undefined && !options.redactor.add(value, label) && !shortWarned.has(label)) {
          shortWarned.add(label);
          options.logger.warn({ secret: label, source: source.type }, `secret ${label} is too short to be recognised in logs; use a longer value`);
        }
        return value;
      };
      const logFailure = (err: unknown, what: string): void => {
        options.logger.warn(
          {
            secret: label,
            source: source.type,
            code: err instanceof ProxyError ? err.code : ErrorCodes.SECRET_UNAVAILABLE,
            error_class: err instanceof Error ? err.name : typeof err,
            // The message names the secret and the failure; backends never put the value in it.
            detail: err instanceof Error ? err.message : undefined,
          },
          what,
        );
      };
      const asUnavailable = (err: unknown): ProxyError =>
        err instanceof ProxyError ? err : secretUnavailable(`secret ${label} (${source.type}) could not be fetched`, err);

      let current: string | undefined;
      let lastError: ProxyError | undefined;
      let pending = true;
      let timer: NodeJS.Timeout | undefined;
      const schedule = (ms: number): void => {
        if (signal.aborted) return;
        timer = setTimeout(refresh, Math.min(ms, MAX_TIMER_MS));
        timer.unref();
      };
      const refresh = (): void => {
        read()
          .then((value) => {
            if (current === undefined) options.logger.info({ secret: label, source: source.type }, `secret ${label} is available now`);
            current = value;
            lastError = undefined;
            if (ttl > 0) schedule(ttl);
          })
          .catch((err: unknown) => {
            if (signal.aborted) return;
            if (current === undefined) {
              lastError = asUnavailable(err);
              schedule(failureTtl);
              return;
            }
            logFailure(err, `secret ${label} refresh failed; keeping the last value`);
            schedule(Math.max(1, Math.floor(ttl / 2)));
          });
      };
      // The first fetch runs detached from whoever opened the secret: only close() or the
      // resolver's signal end it early. A value read once needs no timer; a failed first read
      // is retried every failure_ttl, and a ttl refreshes.
      const first = read()
        .then(
          (value) => {
            current = value;
            if (ttl > 0) schedule(ttl);
          },
          (err: unknown) => {
            lastError = asUnavailable(err);
            if (signal.aborted) return;
            logFailure(err, `secret ${label} is unavailable; requests that need it get the documented failure until a fetch succeeds`);
            schedule(failureTtl);
          },
        )
        .finally(() => {
          pending = false;
        });

      const handle: SecretHandle = {
        label,
        type: source.type,
        get pending() {
          return pending;
        },
        get available() {
          return current !== undefined;
        },
        ready: () => first,
        value: () => {
          if (current !== undefined) return current;
          if (pending) throw secretUnavailable(`secret ${label} (${source.type}) is still being fetched`);
          throw lastError ?? secretUnavailable(`secret ${label} (${source.type}) is not available`);
        },
        close: () => {
          clearTimeout(timer);
          timer = undefined;
          controller.abort();
          fetcher.close?.();
          options.signal.removeEventListener('abort', handle.close);
          open.delete(handle);
        },
      };
      if (!options.signal.aborted) options.signal.addEventListener('abort', handle.close, { once: true });
      open.add(handle);
      return handle;
    },
  };
}

/**
 * Runs one fetch, bounded by `timeoutMs` and `signal`: the fetcher gets a signal that aborts on
 * either, and the result is given up on then even if the fetcher ignores its signal.
 */
function fetchWithin(fetcher: SecretFetcher, signal: AbortSignal, timeoutMs: number): Promise<string> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(`timed out after ${timeoutMs / 1000}s`)), timeoutMs);
  timer.unref();
  const bounded = AbortSignal.any([signal, deadline.signal]);
  return new Promise<string>((resolve, reject) => {
    const onAbort = (): void => reject(bounded.reason instanceof Error ? bounded.reason : new Error('secret closed'));
    if (bounded.aborted) return onAbort();
    bounded.addEventListener('abort', onAbort, { once: true });
    fetcher.fetch(bounded).then(resolve, reject);
  }).finally(() => {
    clearTimeout(timer);
  });
}

/** Parses `raw` as JSON and returns field `key` (a string as is, anything else as JSON). */
function extractJsonKey(raw: string, key: string, label: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // The parser's message quotes the input: never pass it on.
    throw jsonKeyError(`secret ${label} is not JSON, so json_key "${key}" cannot be read`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.hasOwn(parsed, key)) {
    throw jsonKeyError(`secret ${label} has no JSON field "${key}"`);
  }
  const field = (parsed as Record<string, unknown>)[key];
  if (field === null || field === undefined) throw jsonKeyError(`secret ${label} has a null JSON field "${key}"`);
  return typeof field === 'string' ? field : JSON.stringify(field);
}

function jsonKeyError(message: string): ProxyError {
  return new ProxyError(ErrorCodes.SECRET_JSON_KEY, message, { status: 502, reason: 'secret_unavailable' });
}

function secretUnavailable(message: string, cause?: unknown): ProxyError {
  return new ProxyError(ErrorCodes.SECRET_UNAVAILABLE, message, { status: 502, reason: 'secret_unavailable', cause });
}
