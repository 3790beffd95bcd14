import { ConfigError, durationSchema, parseDuration, rulesSchema, type ConfigIssue, type JsonSchema, type RuleConfig, type WithDefaults } from '@proxy/core';

/** The LLM APIs a judge can call. */
export type ProviderType = 'anthropic' | 'openai';

/** The `provider` block: which API, which model, where the key is. */
export interface ProviderConfig {
  readonly type: ProviderType;
  readonly model: string;
  /** Environment variable of the proxy process holding the API key. */
  readonly api_key_env: string;
  /** Default `https://api.anthropic.com` or `https://api.openai.com` (without `/v1`). */
  readonly base_url?: string;
  /** Largest model answer, in tokens. Default 256. */
  readonly max_tokens: number;
}

/** The `config` block of a `judge` transform, after schema defaults. */
export interface JudgeConfig {
  /** The instance name: its audit trace name, `rejected_by` and `judge.instance`. */
  readonly name: string;
  /** The policy, in natural language. */
  readonly prompt: string;
  /** Requests this judge decides; others pass with no LLM call and no annotation. */
  readonly rules: readonly RuleConfig[];
  readonly provider: ProviderConfig;
  /** What a failure (error, timeout, malformed answer, open breaker) does: `deny` (403) or `skip`. */
  readonly fallback: 'deny' | 'skip';
  /** Longest LLM call, and longest wait for a concurrency slot. Default `8s`. */
  readonly timeout: string;
  /** Most LLM calls in flight at once for this instance. Default 100. */
  readonly max_concurrent: number;
  readonly circuit_breaker: { readonly consecutive_failures: number; readonly cooldown: string };
  /** How long a decision is reused for an identical request envelope; absent: no cache. */
  readonly cache_ttl?: string;
  /** Most decisions cached; the least recently used go first. Default 10000. */
  readonly cache_max_entries: number;
  /** `enforce` (the default) or `shadow`: decide and annotate, never block. */
  readonly mode: 'enforce' | 'shadow';
}

/** The settings of one instance, checked and in the units the code uses. */
/** The `config` block as written: the fields the schema defaults (in `provider` and `circuit_breaker` too) are optional. */
export type JudgeInput = WithDefaults<Omit<JudgeConfig, 'provider' | 'circuit_breaker'>, 'fallback' | 'timeout' | 'max_concurrent' | 'cache_max_entries' | 'mode'> & {
  readonly provider: WithDefaults<ProviderConfig, 'max_tokens'>;
  readonly circuit_breaker?: Partial<JudgeConfig['circuit_breaker']>;
};

export interface JudgeSettings {
  readonly timeoutMs: number;
  readonly cooldownMs: number;
  /** 0 when the cache is off. */
  readonly cacheTtlMs: number;
  /** The API's base URL, without a trailing slash. */
  readonly baseUrl: string;
}

/** Where each provider lives unless `base_url` says otherwise. */
export const DEFAULT_BASE_URLS: Readonly<Record<ProviderType, string>> = {
  anthropic: 'https://api.anthropic.com',
  openai: 'https://api.openai.com',
};

/** JSON Schema of the `judge` transform's config (iron-proxy's fields plus `cache_ttl`, `cache_max_entries` and `mode`). */
export const judgeSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'prompt', 'rules', 'provider'],
  properties: {
    name: { type: 'string', pattern: '\\S', maxLength: 128 },
    prompt: { type: 'string', pattern: '\\S' },
    rules: { ...rulesSchema, minItems: 1 },
    provider: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'model', 'api_key_env'],
      properties: {
        type: { enum: ['anthropic', 'openai'] },
        model: { type: 'string', pattern: '\\S' },
        api_key_env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
        base_url: { type: 'string', pattern: '^https?://' },
        max_tokens: { type: 'integer', minimum: 1, maximum: 65536, default: 256 },
      },
    },
    fallback: { enum: ['deny', 'skip'], default: 'deny' },
    timeout: { ...durationSchema, default: '8s' },
    max_concurrent: { type: 'integer', minimum: 1, default: 100 },
    circuit_breaker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        consecutive_failures: { type: 'integer', minimum: 1, default: 5 },
        cooldown: { ...durationSchema, default: '10s' },
      },
    },
    cache_ttl: durationSchema,
    cache_max_entries: { type: 'integer', minimum: 1, default: 10_000 },
    mode: { enum: ['enforce', 'shadow'], default: 'enforce' },
  },
};

/**
 * Checks what the schema cannot (durations above zero, a usable base URL) and converts the
 * config. Throws a `ConfigError` whose issue paths name the fields at fault.
 */
export function resolveSettings(config: JudgeConfig): JudgeSettings {
  const issues: ConfigIssue[] = [];
  const timeoutMs = positiveDuration(config.timeout, 'timeout', issues);
  const cooldownMs = positiveDuration(config.circuit_breaker.cooldown, 'circuit_breaker.cooldown', issues);
  const cacheTtlMs = config.cache_ttl === undefined ? 0 : positiveDuration(config.cache_ttl, 'cache_ttl', issues);
  const baseUrl = (config.provider.base_url ?? DEFAULT_BASE_URLS[config.provider.type]).replace(/\/+$/, '');
  try {
    const url = new URL(baseUrl);
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      issues.push({ path: 'provider.base_url', message: 'must not carry a query, a fragment or credentials' });
    }
  } catch {
    issues.push({ path: 'provider.base_url', message: `is not a URL (got ${JSON.stringify(config.provider.base_url)})` });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { timeoutMs, cooldownMs, cacheTtlMs, baseUrl };
}

function positiveDuration(text: string, path: string, issues: ConfigIssue[]): number {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
    issues.push({ path, message: `must be greater than 0 (got ${text})` });
  } catch (err) {
    issues.push({ path, message: err instanceof Error ? err.message : String(err) });
  }
  return 0;
}
