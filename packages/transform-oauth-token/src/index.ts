/**
 * `oauth_token`: OAuth2 access tokens minted at egress. Each `tokens[]` entry holds the
 * credentials of one grant (client credentials, a refresh token, a username and password, or
 * an RSA key for an RFC 7523 assertion), each from its own secret source; the proxy trades them
 * at the token endpoint, caches the access token until shortly before it expires, and sets it
 * (`Authorization: Bearer <token>` by default) on the requests the entry's rules match. The
 * workload holds no credential: its own token requests to a configured endpoint get a
 * placeholder token from the proxy, and the placeholder is replaced on the way out.
 */
import {
  CONTINUE,
  canonicalHeaderName,
  compileRules,
  defineTransform,
  rejectJson,
  type Decision,
  type Logger,
  type RuleSet,
  type SecretHandle,
  type Trace,
  type TransformDefinition,
} from '@proxy/core';
import { checkEntries, GRANT_CREDENTIALS, oauthTokenSchema, type CredentialField, type Grant, type OAuthTokenConfig, type OAuthTokenInput } from './config.js';
import type { MintedToken } from './grants.js';
import { MintError, toMintError } from './mint-error.js';
import { TokenEndpointStub } from './stub.js';
import { tokenFetch } from './token-endpoint.js';
import { TokenSource } from './token-source.js';

export type { CredentialField, Grant, OAuthTokenConfig, OAuthTokenInput, TokenEntryConfig, TokenEntryInput } from './config.js';
export { oauthTokenSchema, GRANT_CREDENTIALS } from './config.js';
export { JWT_BEARER_GRANT_TYPE } from './config.js';
export { MintError } from './mint-error.js';
export { STUB_ACCESS_TOKEN, STUB_BODY, STUBBED_TOKEN_ENDPOINT } from './stub.js';
export { EXPIRY_SKEW_MS } from './token-source.js';
export { MAX_TOKEN_RESPONSE_BYTES } from './token-endpoint.js';

/** Reject reason (502) of a `require: true` request that no token could be had for; also the `skipped` annotation otherwise. */
export const TOKEN_UNAVAILABLE = 'token_unavailable';

/** The `error` field of the 502 JSON body. */
export const MINT_FAILED_MESSAGE = 'oauth_token failed to mint an access token';

/** Longest a token request may take. */
export const TOKEN_REQUEST_TIMEOUT_MS = 30_000;

/** One entry, compiled, its sources open. */
interface LiveEntry {
  readonly index: number;
  readonly grant: Grant;
  readonly scope: RuleSet;
  /** The header name as set on requests (canonical casing). */
  readonly header: string;
  readonly prefix: string;
  readonly require: boolean;
  readonly source: TokenSource;
  readonly handles: readonly SecretHandle[];
}

/** The `oauth_token` transform definition. */
export const oauthTokenTransform: TransformDefinition<OAuthTokenConfig, OAuthTokenInput> = defineTransform<OAuthTokenConfig, OAuthTokenInput>({
  name: 'oauth_token',
  schema: oauthTokenSchema,
  async create(config, env) {
    const endpoints = checkEntries(config);
    const fetch = tokenFetch(env.http);
    const entries: LiveEntry[] = [];
    try {
      for (const [index, entry] of config.tokens.entries()) {
        const endpoint = endpoints[index]!;
        if (endpoint.protocol === 'http:') {
          env.logger.warn({ entry: index, token_endpoint: endpoint.origin }, `tokens[${index}].token_endpoint is plain http: credentials cross the network unencrypted`);
        }
        const credentials = new Map<CredentialField, SecretHandle>();
        const headers = new Map<string, SecretHandle>();
        const handles: SecretHandle[] = [];
        const open = async (source: Parameters<typeof env.secrets.open>[0]): Promise<SecretHandle> => {
          const handle = await env.secrets.open(source);
          handles.push(handle);
          return handle;
        };
        try {
          const { required, optional } = GRANT_CREDENTIALS[entry.grant];
          for (const field of [...required, ...optional]) {
            const source = entry[field];
            if (source !== undefined) credentials.set(field, await open(source));
          }
          for (const [name, source] of Object.entries(entry.token_endpoint_headers ?? {})) headers.set(name, await open(source));
        } catch (err) {
          for (const handle of handles) handle.close();
          throw err;
        }
        const logger = env.logger.child({ entry: index, grant: entry.grant });
        const label = `oauth_token.tokens[${index}]`;
        const source = new TokenSource({
          credentials,
          headers,
          clock: env.clock,
          mint: (input) =>
            mintLogged(logger, async () =>
              // oauth4webapi and jose are loaded by the first mint, not by every proxy that lists the transform.
              (await import('./grants.js')).requestToken({
                grant: entry.grant,
                endpoint,
                credentials: input.credentials,
                scopes: entry.scopes,
                audience: entry.audience,
                headers: input.headers,
                fetch,
                // The transform's lifetime, never a request's: a token minted for one request
                // serves (and is refreshed for) the ones after it.
                signal: AbortSignal.any([env.signal, AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS)]),
                now: env.clock.now(),
                onCredential: (value, what) => env.redactor.add(value, `${label}.${what}`),
              }).then((minted) => {
                // Minted credentials never reach a log line or an audit record.
                env.redactor.add(minted.accessToken, `${label}.access_token`);
                if (minted.refreshToken !== undefined) env.redactor.add(minted.refreshToken, `${label}.refresh_token`);
                return minted;
              }),
            ),
          onRotated: () => logger.info({}, `a credential of tokens[${index}] changed; its cached token is dropped`),
        });
        entries.push({
          index,
          grant: entry.grant,
          scope: compileRules(entry.rules),
          header: canonicalHeaderName(entry.header),
          prefix: entry.value_prefix,
          require: entry.require,
          source,
          handles,
        });
      }
    } catch (err) {
      for (const live of entries) for (const handle of live.handles) handle.close();
      throw err;
    }
    const stub = new TokenEndpointStub(endpoints);

    return {
      async onRequest(request, trace) {
        // Stubbing comes before the rules: an SDK's own token call never leaves the proxy.
        if (request.mode !== 'sni-only') {
          const answer = stub.answer(request);
          if (answer !== undefined) return answer;
        }
        const live = entries.find((e) => e.scope.matches(request));
        if (live === undefined) return CONTINUE;
        trace.annotate('grant', live.grant);
        // TLS passed through unread cannot have a header set.
        if (request.mode === 'sni-only') return unavailable(live, trace, 'tls_passthrough');

        let token: string;
        try {
          ({ token } = await live.source.token());
        } catch (err) {
          const failure = toMintError(err);
          if (failure.credential !== undefined) trace.annotate('credential_unavailable', failure.credential);
          return unavailable(live, trace, failure.reason);
        }
        request.headers.set(live.header, `${live.prefix}${token}`);
        trace.annotate('injected', [`header:${live.header}`]);
        return CONTINUE;
      },
      close() {
        for (const live of entries) {
          live.source.clear();
          for (const handle of live.handles) handle.close();
        }
      },
    };
  },
});

export default oauthTokenTransform;

/**
 * A request in scope that gets no token: with `require`, 502 and a JSON body naming the grant;
 * otherwise forwarded untouched and annotated `skipped: token_unavailable`.
 */
function unavailable(live: LiveEntry, trace: Trace, reason: string): Decision {
  trace.annotate('error', reason);
  if (live.require) {
    return rejectJson(502, TOKEN_UNAVAILABLE, { error: MINT_FAILED_MESSAGE, grant: live.grant });
  }
  trace.annotate('skipped', TOKEN_UNAVAILABLE);
  return CONTINUE;
}

/**
 * Runs one mint and logs its outcome once (not once per waiting request): a refused grant
 * (`invalid_grant`: a person must fix the credential) at error, other failures at warn.
 */
async function mintLogged(logger: Logger, mint: () => Promise<MintedToken>): Promise<MintedToken> {
  try {
    const minted = await mint();
    logger.debug(
      { expires_at: minted.expiresAt === undefined ? null : new Date(minted.expiresAt).toISOString(), refresh_token_issued: minted.refreshToken !== undefined },
      'minted an access token',
    );
    return minted;
  } catch (err) {
    const failure = err instanceof MintError ? err : toMintError(err);
    const fields = { error: failure.reason, detail: failure.message };
    if (failure.reason === 'invalid_grant') logger.error(fields, 'the token endpoint refused the grant (invalid_grant): the credential must be replaced');
    else logger.warn(fields, `minting an access token failed: ${failure.reason}`);
    throw failure;
  }
}
