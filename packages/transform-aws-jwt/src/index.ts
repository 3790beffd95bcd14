/**
 * `aws_jwt`: AWS outbound identity federation at egress. The proxy asks AWS STS
 * (`GetWebIdentityToken`) for a short-lived JWT naming the workload's AWS identity, caches it per
 * audience set, refreshes it in the background before it expires, and sends it upstream as
 * `Authorization: Bearer <jwt>` in place of whatever the workload sent. No token means no
 * request: 502 `token unavailable`, and the upstream is never contacted.
 */
import {
  CONTINUE,
  compileRules,
  defineTransform,
  reject,
  type Logger,
  type TransformDefinition,
} from '@proxy/core';
import { compileAudiencePolicy, dynamicAudience, type AudiencePolicy } from './audience.js';
import { awsJwtSchema, resolveSettings, type AwsJwtConfig, type AwsJwtInput } from './config.js';
import { TokenMetrics } from './metrics.js';
import { TokenCache } from './token-cache.js';
import { TokenMintError, type MintedToken } from './token-mint-error.js';

export type { AwsJwtConfig, AwsJwtInput, SigningAlgorithm } from './config.js';
export { awsJwtSchema, DEFAULT_MAX_CACHED_AUDIENCES, MAX_DURATION_SECONDS, MIN_DURATION_SECONDS } from './config.js';
export { dynamicAudience, normalizeAudiences } from './audience.js';
export { MetricNames } from './metrics.js';
export type { CacheOutcome } from './token-cache.js';

/** Reject reason (status 502) when no token could be minted; the client body is {@link TOKEN_UNAVAILABLE_MESSAGE}. */
export const TOKEN_UNAVAILABLE = 'token_unavailable';
/** The client body of a request refused for want of a token, as aws-outbound-jwt-proxy sends it. */
export const TOKEN_UNAVAILABLE_MESSAGE = 'token unavailable';
/** Reject reason (status 403) when a derived audience is outside `allowed_audiences`. */
export const AUDIENCE_NOT_ALLOWED = 'audience_not_allowed';

/** Longest AWS error detail kept in a log line. */
const MAX_LOGGED_DETAIL = 300;

/** The `aws_jwt` transform definition. */
export const awsJwtTransform: TransformDefinition<AwsJwtConfig, AwsJwtInput> = defineTransform<AwsJwtConfig, AwsJwtInput>({
  name: 'aws_jwt',
  schema: awsJwtSchema,
  async create(config, env) {
    const settings = resolveSettings(config);
    const scope = config.rules.length === 0 ? undefined : compileRules(config.rules);
    const policy: AudiencePolicy | undefined =
      config.allowed_audiences === undefined ? undefined : compileAudiencePolicy(config.allowed_audiences);
    const metrics = new TokenMetrics(env.meter);
    // The AWS SDK (about 10 MiB resident) is loaded by the first aws_jwt transform created, not
    // by every proxy whose registry lists the transform.
    const { createStsTokenSource } = await import('./sts-token-source.js');
    const source = await createStsTokenSource({
      signingAlgorithm: settings.signingAlgorithm,
      durationSeconds: settings.durationSeconds,
      signal: env.signal,
    });

    const mint = async (audiences: readonly string[], trigger: 'miss' | 'refresh'): Promise<MintedToken> => {
      const label = audiences.join(',');
      try {
        const minted = await source.mint(audiences);
        // The token is a credential: never let a log line or an audit record show it.
        env.redactor.add(minted.token, 'aws_jwt');
        metrics.fetched(label);
        env.logger.debug({ audience: audiences, trigger, expires_at: new Date(minted.expiresAt).toISOString() }, 'minted a web-identity token');
        return minted;
      } catch (err) {
        // A call cut short because the transform is closing is no STS failure.
        if (env.signal.aborted) throw err;
        const errorClass = err instanceof TokenMintError ? err.errorClass : 'unknown';
        metrics.fetched(label, errorClass);
        logMintFailure(env.logger, err, { audience: audiences, trigger, error_class: errorClass });
        throw err;
      }
    };
    const cache = new TokenCache({
      mint,
      clock: env.clock,
      refreshSkewMs: settings.refreshSkewMs,
      maxEntries: settings.maxCachedAudiences,
      onEvict: () => metrics.evicted(),
      onSizeChange: (delta) => metrics.cachedAudiences(delta),
    });

    return {
      async onRequest(request, trace) {
        // A tunnel being opened carries no HTTP request to authorize (the requests inside it come
        // through here one by one), and TLS passed through unread cannot have a header set.
        if (request.mode === 'tunnel' || request.mode === 'sni-only') return CONTINUE;
        if (scope !== undefined && !scope.matches(request)) return CONTINUE;

        const audience = settings.audience ?? [dynamicAudience(request)];
        trace.annotate('audience', audience);
        if (policy !== undefined && !policy(request)) {
          return reject(403, AUDIENCE_NOT_ALLOWED, `audience not allowed: ${audience[0]}`);
        }

        let served;
        try {
          served = await cache.get(audience);
        } catch (err) {
          trace.annotate('error_class', err instanceof TokenMintError ? err.errorClass : 'unknown');
          // The engine reads `token_result` into http_client_request_duration_seconds{token_result}.
          trace.annotate('token_result', 'fetch_error');
          return reject(502, TOKEN_UNAVAILABLE, TOKEN_UNAVAILABLE_MESSAGE);
        }
        metrics.served(audience.join(','), served.outcome);
        trace.annotate('cache', served.outcome);

        const replaced = request.headers.has('authorization');
        request.headers.set('Authorization', `Bearer ${served.token}`);
        env.logger.debug(
          { audience, cache: served.outcome },
          replaced ? 'replaced the inbound Authorization header with a web-identity bearer token' : 'set Authorization to a web-identity bearer token',
        );
        trace.annotate('injected', ['header:Authorization']);
        trace.annotate('token_result', 'ok');
        return CONTINUE;
      },
      close() {
        cache.clear();
        source.close();
      },
    };
  },
});

export default awsJwtTransform;

/**
 * Logs a failed STS call for the operator: the error class, and the AWS message and request id
 * when STS answered (never sent to the client). A failed background refresh is a warning, since
 * the cached token is still in use; a failure that leaves requests without a token is an error.
 */
function logMintFailure(logger: Logger, err: unknown, fields: { audience: readonly string[]; trigger: 'miss' | 'refresh'; error_class: string }): void {
  const cause = err instanceof Error ? err.cause : undefined;
  const detail = cause instanceof Error ? cause.message.slice(0, MAX_LOGGED_DETAIL) : undefined;
  const requestId = (cause as { $metadata?: { requestId?: string } } | undefined)?.$metadata?.requestId;
  const entry = { ...fields, ...(detail === undefined ? {} : { detail }), ...(requestId === undefined ? {} : { aws_request_id: requestId }) };
  if (fields.trigger === 'refresh') logger.warn(entry, 'web-identity token refresh failed; the cached token stays in use until it expires');
  else logger.error(entry, `STS GetWebIdentityToken failed: ${fields.error_class}`);
}
