import { ConfigError, durationSchema, parseDuration, rulesSchema, type JsonSchema, type RuleConfig, type WithDefaults } from '@proxy/core';
import { normalizeAudiences } from './audience.js';

/** The signing algorithms STS offers for web-identity tokens. */
export type SigningAlgorithm = 'RS256' | 'ES384';

/** The `config` block of an `aws_jwt` transform, after schema defaults. */
export interface AwsJwtConfig {
  /**
   * The `aud` claim(s) of every token. Absent: dynamic audience, `<scheme>://<host>` of each
   * request's destination (lowercase, no port, IPv6 in brackets).
   */
  readonly audience?: readonly string[];
  /** `RS256` or `ES384`, any case. Default `RS256`. */
  readonly signing_algorithm: string;
  /** Requested token lifetime, 60s to 1h. Default `1h`. */
  readonly duration: string;
  /** How long before expiry a cached token is refreshed, in the background; > 0 and < `duration`. Default `5m`. */
  readonly refresh_skew: string;
  /** Requests that get a token; empty (the default) means every request. */
  readonly rules: readonly RuleConfig[];
  /** Largest number of audience sets with a cached token; the least recently used is evicted. Default 1000. */
  readonly max_cached_audiences: number;
  /**
   * Dynamic audience only: the audiences tokens may be minted for, as host globs
   * (`*.example.com`, any scheme) or `scheme://host-glob` (`https://*.example.com`). A request
   * whose derived audience matches none is refused with 403. Absent: any destination.
   */
  readonly allowed_audiences?: readonly string[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type AwsJwtInput = WithDefaults<AwsJwtConfig, 'signing_algorithm' | 'duration' | 'refresh_skew' | 'rules' | 'max_cached_audiences'>;

/** The settings of one transform instance, checked and in the units the code uses. */
export interface AwsJwtSettings {
  /** The normalized static audience set, or undefined in dynamic mode. */
  readonly audience: readonly string[] | undefined;
  readonly signingAlgorithm: SigningAlgorithm;
  readonly durationSeconds: number;
  readonly refreshSkewMs: number;
  readonly maxCachedAudiences: number;
}

/** Shortest token lifetime STS issues. */
export const MIN_DURATION_SECONDS = 60;
/** Longest token lifetime STS issues. */
export const MAX_DURATION_SECONDS = 3600;
/** Default of `max_cached_audiences`. */
export const DEFAULT_MAX_CACHED_AUDIENCES = 1000;

/** JSON Schema of the `aws_jwt` transform's config. */
export const awsJwtSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    // `\S`: neither empty nor whitespace alone.
    audience: { type: 'array', minItems: 1, items: { type: 'string', pattern: '\\S' } },
    signing_algorithm: { type: 'string', pattern: '^(?:[Rr][Ss]256|[Ee][Ss]384)$', default: 'RS256' },
    duration: { ...durationSchema, default: '1h' },
    refresh_skew: { ...durationSchema, default: '5m' },
    rules: { ...rulesSchema, default: [] },
    max_cached_audiences: { type: 'integer', minimum: 1, default: DEFAULT_MAX_CACHED_AUDIENCES },
    allowed_audiences: { type: 'array', items: { type: 'string', pattern: '\\S' } },
  },
  // A static audience is the only one ever minted: a list of allowed ones would never be consulted.
  if: { required: ['audience'] },
  then: { properties: { allowed_audiences: { not: {} } } },
};

/**
 * Checks what the schema cannot (the duration range, `refresh_skew` against `duration`) and
 * converts the config. Throws a `ConfigError` whose issue paths name the fields at fault.
 */
export function resolveSettings(config: AwsJwtConfig): AwsJwtSettings {
  const issues: { path: string; message: string }[] = [];
  const duration = durationMs(config.duration, 'duration', issues);
  const refreshSkew = durationMs(config.refresh_skew, 'refresh_skew', issues);
  if (duration !== undefined) {
    if (duration < MIN_DURATION_SECONDS * 1000 || duration > MAX_DURATION_SECONDS * 1000) {
      issues.push({ path: 'duration', message: `must be between 60s and 1h (got ${config.duration})` });
    } else if (duration % 1000 !== 0) {
      issues.push({ path: 'duration', message: `must be a whole number of seconds (got ${config.duration})` });
    }
  }
  if (refreshSkew !== undefined && refreshSkew <= 0) {
    issues.push({ path: 'refresh_skew', message: `must be greater than 0 (got ${config.refresh_skew})` });
  } else if (refreshSkew !== undefined && duration !== undefined && refreshSkew >= duration) {
    issues.push({ path: 'refresh_skew', message: `must be less than duration (got ${config.refresh_skew}, duration ${config.duration})` });
  }
  const algorithm = config.signing_algorithm.toUpperCase();
  if (algorithm !== 'RS256' && algorithm !== 'ES384') {
    issues.push({ path: 'signing_algorithm', message: `must be RS256 or ES384 (got ${config.signing_algorithm})` });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    audience: config.audience === undefined ? undefined : normalizeAudiences(config.audience),
    signingAlgorithm: algorithm as SigningAlgorithm,
    durationSeconds: duration! / 1000,
    refreshSkewMs: refreshSkew!,
    maxCachedAudiences: config.max_cached_audiences,
  };
}

function durationMs(text: string, path: string, issues: { path: string; message: string }[]): number | undefined {
  try {
    return parseDuration(text);
  } catch (err) {
    issues.push({ path, message: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}
