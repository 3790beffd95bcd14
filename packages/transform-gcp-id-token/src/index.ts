/**
 * `gcp_id_token`: Google-signed ID tokens for one audience (Cloud Run, IAP, Cloud Functions),
 * minted at egress from a service-account keyfile and sent as a Bearer header on the requests
 * the rules match. The workload's own ID-token calls (the metadata server's `identity` path, a
 * jwt-bearer `target_audience` request to Google's token endpoint) get a placeholder.
 */
import { CONTINUE, compileRules, defineTransform, reject, respond, rulesSchema, secretSourceRef, type JsonSchema, type RuleConfig, type SecretHandle, type SecretSourceConfig, type TransformDefinition, type WithDefaults } from '@proxy/core';
import {
  idTokenAudience,
  isGoogleTokenRequest,
  isMetadataAccountRequest,
  readKeyfilePath,
  sourcedKeyfile,
  staticKeyfile,
  TokenCache,
  TOKEN_UNAVAILABLE,
  tokenUnavailable,
  type CredentialSource,
  type KeyfileMintOptions,
} from '@proxy/transform-gcp-auth';

/** The `config` block of a `gcp_id_token` transform, after schema defaults. */
export interface GcpIdTokenConfig {
  readonly keyfile_path?: string;
  readonly keyfile?: SecretSourceConfig;
  /** The `aud` of the minted tokens (the receiving service's URL). */
  readonly audience: string;
  /** The header the token is sent in. */
  readonly header: 'authorization' | 'x-serverless-authorization';
  readonly rules: readonly RuleConfig[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type GcpIdTokenInput = WithDefaults<GcpIdTokenConfig, 'header'>;

/** JSON Schema of the `gcp_id_token` config. */
export const gcpIdTokenSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['audience', 'rules'],
  properties: {
    keyfile_path: { type: 'string', minLength: 1 },
    keyfile: secretSourceRef,
    audience: { type: 'string', minLength: 1 },
    header: { type: 'string', enum: ['authorization', 'x-serverless-authorization'], default: 'authorization' },
    rules: { ...rulesSchema, minItems: 1 },
  },
  oneOf: [{ required: ['keyfile_path'] }, { required: ['keyfile'] }],
};

/** `stubbed` annotation of the metadata server's identity path. */
export const STUBBED_METADATA_IDENTITY = 'gcp_metadata_identity_endpoint';
/** `stubbed` annotation of an ID-token request to Google's token endpoint. */
export const STUBBED_OAUTH2_ID_TOKEN = 'gcp_oauth2_id_token_endpoint';

/** A placeholder ID token for `audience`: a JWT shape, unsigned (`stub-signature`), good for an hour, meaningless upstream. */
export function stubIdToken(audience: string, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000);
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iss: 'https://accounts.google.com', aud: audience, sub: 'iron-proxy-stub', iat, exp: iat + 3600 })}.stub-signature`;
}

/** The `gcp_id_token` transform definition. */
export const gcpIdTokenTransform: TransformDefinition<GcpIdTokenConfig, GcpIdTokenInput> = defineTransform<GcpIdTokenConfig, GcpIdTokenInput>({
  name: 'gcp_id_token',
  schema: gcpIdTokenSchema,
  async create(config, env) {
    const label = `gcp_id_token(${env.instanceId})`;
    const options: KeyfileMintOptions = { http: env.http, redactor: env.redactor, clock: env.clock, signal: env.signal, label };
    const request = { kind: 'id', audience: config.audience } as const;
    let handle: SecretHandle | undefined;
    let credential: CredentialSource;
    if (config.keyfile_path !== undefined) {
      credential = staticKeyfile(await readKeyfilePath(config.keyfile_path, env.configDir), request, options);
    } else {
      handle = await env.secrets.open(config.keyfile!);
      credential = sourcedKeyfile(handle, request, options);
    }
    const scope = compileRules(config.rules);
    const header = config.header === 'authorization' ? 'Authorization' : 'X-Serverless-Authorization';
    const cache = new TokenCache(env.clock);

    return {
      async onRequest(req, trace) {
        if (req.mode !== 'sni-only') {
          if (isMetadataAccountRequest(req, 'identity')) {
            const audience = new URLSearchParams(req.query).get('audience') ?? '';
            trace.annotate('audience', audience);
            return respond(200, stubIdToken(audience, env.clock.now()), { 'content-type': 'text/plain', 'metadata-flavor': 'Google', 'cache-control': 'no-store' }, STUBBED_METADATA_IDENTITY);
          }
          if (isGoogleTokenRequest(req)) {
            // The body is read and answered, whatever it holds (iron-proxy panics here).
            const audience = await idTokenAudience(req);
            if (audience !== undefined) {
              trace.annotate('audience', audience);
              const body = JSON.stringify({ id_token: stubIdToken(audience, env.clock.now()), expires_in: 3600, token_type: 'Bearer' });
              return respond(200, body, { 'content-type': 'application/json', 'cache-control': 'no-store' }, STUBBED_OAUTH2_ID_TOKEN);
            }
          }
        }
        if (!scope.matches(req)) return CONTINUE;
        trace.annotate('audience', config.audience);
        if (req.mode === 'sni-only') {
          trace.annotate('error', 'tls_passthrough');
          return reject(403, TOKEN_UNAVAILABLE);
        }
        let token: string;
        try {
          const current = credential.current();
          if (current.serviceAccount !== undefined) trace.annotate('service_account', current.serviceAccount);
          ({ token } = await cache.get(current.generation, () => current.mint()));
        } catch (err) {
          env.logger.warn({ error: err instanceof Error ? err.message : String(err) }, 'minting a Google ID token failed');
          return tokenUnavailable(trace, err);
        }
        req.headers.set(header, `Bearer ${token}`);
        trace.annotate('injected', [`header:${header}`]);
        return CONTINUE;
      },
      close() {
        cache.clear();
        handle?.close();
      },
    };
  },
});

export default gcpIdTokenTransform;
