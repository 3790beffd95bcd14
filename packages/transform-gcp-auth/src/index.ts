/**
 * `gcp_auth`: Google Cloud access tokens minted at egress. The proxy holds a service-account
 * keyfile (on disk or from a secret source) or uses Application Default Credentials, mints
 * OAuth2 access tokens with google-auth-library, caches them until shortly before they expire,
 * and sets `Authorization: Bearer <token>` on the requests its rules match. The workload holds
 * no key: its SDK's own token calls (Google's token endpoint, the metadata server's token path)
 * get a placeholder token from the proxy, and the placeholder is replaced on the way out.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CONTINUE, ConfigError, compileRules, defineTransform, reject, type Decision, type RuleSet, type SecretHandle, type Trace, type TransformDefinition } from '@proxy/core';
import { gcpAuthSchema, type GcpAuthConfig, type GcpAuthInput } from './config.js';
import { applicationDefaultCredentials, sourcedKeyfile, staticKeyfile, type CredentialSource, type KeyfileMintOptions } from './credential.js';
import { parseKeyfile, type ServiceAccountKey } from './keyfile.js';
import { MintError, toMintError } from './mint-error.js';
import { accessTokenStub, idTokenAudience, isGoogleTokenRequest, isMetadataAccountRequest } from './stub.js';
import { TokenCache } from './token-cache.js';

export type { GcpAuthConfig, GcpAuthInput, CredentialsProviderConfig } from './config.js';
export { gcpAuthSchema, scopeSchema } from './config.js';
export { parseKeyfile, KeyfileError, GOOGLE_TOKEN_URL } from './keyfile.js';
export type { ServiceAccountKey } from './keyfile.js';
export { MintError, toMintError } from './mint-error.js';
export { mintWithKey, staticKeyfile, sourcedKeyfile } from './credential.js';
export type { CredentialSource, CurrentCredential, KeyfileMintOptions, TokenRequest } from './credential.js';
export { TokenCache, EXPIRY_SKEW_MS } from './token-cache.js';
export type { MintedToken, TokenOutcome } from './token-cache.js';
export { TOKEN_REQUEST_TIMEOUT_MS } from './transport.js';
export {
  STUB_ACCESS_TOKEN,
  STUB_BODY,
  STUBBED_TOKEN_ENDPOINT,
  GOOGLE_TOKEN_HOST,
  GOOGLE_TOKEN_PATH,
  METADATA_HOSTS,
  JWT_BEARER_GRANT_TYPE,
  MAX_TOKEN_REQUEST_BYTES,
  accessTokenStub,
  idTokenAudience,
  isGoogleTokenRequest,
  isMetadataAccountRequest,
} from './stub.js';

/** Reject reason (403) when no token can be had. */
export const TOKEN_UNAVAILABLE = 'token_unavailable';

/**
 * Reads a keyfile named by `keyfile_path` (relative to `configDir`) at startup. A missing,
 * unreadable or unusable file is a config error naming the field: the proxy does not start.
 */
export async function readKeyfilePath(path: string, configDir: string | undefined, field = 'keyfile_path'): Promise<ServiceAccountKey> {
  const file = resolve(configDir ?? process.cwd(), path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: field, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  try {
    return parseKeyfile(text);
  } catch (err) {
    throw new ConfigError([{ path: field, message: `${file}: ${(err as Error).message}` }]);
  }
}

/**
 * The reject of a request in scope that gets no token: 403 `token_unavailable`, with the
 * failure's reason in the `error` annotation (and the keyfile source's label when it was
 * unavailable). Never a secret: reasons are fixed words or OAuth error codes.
 */
export function tokenUnavailable(trace: Trace, err: unknown): Decision {
  const failure = toMintError(err);
  trace.annotate('error', failure.reason);
  if (failure.credential !== undefined) trace.annotate('credential_unavailable', failure.credential);
  return reject(403, TOKEN_UNAVAILABLE);
}

/** The `gcp_auth` transform definition. */
export const gcpAuthTransform: TransformDefinition<GcpAuthConfig, GcpAuthInput> = defineTransform<GcpAuthConfig, GcpAuthInput>({
  name: 'gcp_auth',
  schema: gcpAuthSchema,
  async create(config, env) {
    const label = `gcp_auth(${env.instanceId})`;
    const options: KeyfileMintOptions = { http: env.http, redactor: env.redactor, clock: env.clock, signal: env.signal, label };
    const request = { kind: 'access', scopes: config.scopes, subject: config.subject } as const;
    let handle: SecretHandle | undefined;
    let credential: CredentialSource;
    if (config.keyfile_path !== undefined) {
      credential = staticKeyfile(await readKeyfilePath(config.keyfile_path, env.configDir), request, options);
    } else if (config.keyfile !== undefined) {
      handle = await env.secrets.open(config.keyfile);
      credential = sourcedKeyfile(handle, request, options);
    } else {
      credential = applicationDefaultCredentials(config.scopes, { clock: env.clock, redactor: env.redactor, label });
    }
    // Empty rules: every request (iron-proxy's meaning for gcp_auth).
    const scope: RuleSet | undefined = config.rules.length === 0 ? undefined : compileRules(config.rules);
    const cache = new TokenCache(env.clock);
    const logger = env.logger;

    return {
      async onRequest(req, trace) {
        if (req.mode !== 'sni-only') {
          // Stubs come before the rules: an SDK's own token call never leaves the proxy. An
          // ID-token request (a `target_audience` assertion) is left for gcp_id_token.
          if (isMetadataAccountRequest(req, 'token')) return accessTokenStub(true);
          if (isGoogleTokenRequest(req) && (await idTokenAudience(req)) === undefined) return accessTokenStub(false);
        }
        if (scope !== undefined && !scope.matches(req)) return CONTINUE;
        // TLS passed through unread cannot carry a header the proxy sets: fail closed.
        if (req.mode === 'sni-only') {
          trace.annotate('error', 'tls_passthrough');
          return reject(403, TOKEN_UNAVAILABLE);
        }
        let token: string;
        try {
          const current = credential.current();
          if (current.serviceAccount !== undefined) trace.annotate('service_account', current.serviceAccount);
          ({ token } = await cache.get(current.generation, () =>
            current.mint().catch((err: unknown) => {
              const failure = toMintError(err);
              logger.warn({ error: failure.reason, detail: failure.message }, `minting a Google access token failed: ${failure.reason}`);
              throw failure;
            }),
          ));
        } catch (err) {
          if (err instanceof MintError && err.reason.startsWith('keyfile_')) logger.warn({ error: err.reason, detail: err.message }, 'the gcp_auth keyfile cannot be used');
          return tokenUnavailable(trace, err);
        }
        req.headers.set('Authorization', `Bearer ${token}`);
        trace.annotate('injected', ['header:Authorization']);
        return CONTINUE;
      },
      close() {
        cache.clear();
        handle?.close();
      },
    };
  },
});

export default gcpAuthTransform;
