import type { JsonSchema } from './schema.js';
import type { Clock, HttpClient, Logger } from './transform.js';

/** The `source` block of a secret, as written in config: `{ type: env, var: X, json_key?, ttl? }`. */
export interface SecretSourceConfig {
  readonly type: string;
  /** Parse the fetched value as JSON and use this field. */
  readonly json_key?: string;
  /** Re-fetch interval (duration string); absent or `0` reads once. */
  readonly ttl?: string;
  readonly [field: string]: unknown;
}

/** What a secret backend gets to fetch with. */
export interface SecretSourceContext {
  readonly logger: Logger;
  readonly http: HttpClient;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Fetches the current raw value of one configured secret. */
export interface SecretFetcher {
  fetch(signal: AbortSignal): Promise<string>;
}

/**
 * A secret backend (`env` here; `aws_sm`, `1password_connect`, ... in `@proxy/source-*`).
 * `json_key` and `ttl` are handled once, by the resolver, for every backend.
 */
export interface SecretSourceDefinition<Config extends SecretSourceConfig = SecretSourceConfig> {
  /** The `type` value that selects this backend. */
  readonly type: string;
  /** JSON Schema of the backend's own fields (not `type`, `json_key`, `ttl`). */
  readonly properties: Readonly<Record<string, JsonSchema>>;
  /** Which of the backend's own fields are required. */
  readonly required: readonly string[];
  /** A label naming the secret in audit records and logs (never its value), e.g. the env var. */
  label(config: Config): string;
  create(config: Config, context: SecretSourceContext): SecretFetcher;
}

/** A resolved secret. `value()` is synchronous so the request path never waits on a backend. */
export interface SecretHandle {
  /** Names the secret for audit records: the env var name, the secret id, ... */
  readonly label: string;
  /**
   * The current value. Throws a `ProxyError` (`PROXY_ERR_SECRET_UNAVAILABLE`, status 502)
   * when no value could be fetched.
   */
  value(): string;
  /** Stops background refresh. */
  close(): void;
}

/** Opens secrets for transforms. */
export interface SecretResolver {
  /**
   * Resolves a source: fetches it once (rejecting with `PROXY_ERR_SECRET_UNAVAILABLE` when
   * that fails, so a bad secret is a startup error), applies `json_key`, and, with a `ttl`,
   * refreshes it in the background, keeping the last good value when a refresh fails.
   */
  open(source: SecretSourceConfig): Promise<SecretHandle>;
}

/** The built-in `env` backend: `{ type: env, var: NAME }` reads the proxy's environment. */
export const envSource: SecretSourceDefinition<SecretSourceConfig & { readonly var: string }> = {
  type: 'env',
  properties: { var: { type: 'string', minLength: 1 } },
  required: ['var'],
  label: (config) => config.var,
  create(config, context) {
    void config;
    void context;
    throw new Error('TODO(core): envSource.create');
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
  void sources;
  throw new Error('TODO(core): secretSourceSchema');
}

/** Options of {@link createSecretResolver}. */
export interface SecretResolverOptions {
  readonly sources: readonly SecretSourceDefinition[];
  readonly logger: Logger;
  readonly clock: Clock;
  readonly http: HttpClient;
  /** Aborting stops every background refresh. */
  readonly signal: AbortSignal;
  /** Environment the `env` backend reads; defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function createSecretResolver(options: SecretResolverOptions): SecretResolver {
  void options;
  throw new Error('TODO(core): createSecretResolver');
}
