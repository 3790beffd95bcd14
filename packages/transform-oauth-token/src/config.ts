import { ConfigError, rulesSchema, secretSourceRef, type ConfigIssue, type JsonSchema, type RuleConfig, type SecretSourceConfig, type WithDefaults } from '@proxy/core';

/** The OAuth2 grants a token entry can use. */
export type Grant = 'client_credentials' | 'refresh_token' | 'password' | 'jwt_bearer';

/** The grant type URI of RFC 7523 §2.1 (`grant: jwt_bearer`). */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The credential fields of an entry: each one is its own secret source. */
export type CredentialField = 'client_id' | 'client_secret' | 'refresh_token' | 'username' | 'password' | 'issuer' | 'subject' | 'private_key' | 'private_key_id';

/** One `tokens[]` entry, after schema defaults. */
export interface TokenEntryConfig extends Partial<Record<CredentialField, SecretSourceConfig>> {
  readonly grant: Grant;
  /** Where the proxy POSTs the grant; requests to it (host and path) get the stub answer. */
  readonly token_endpoint: string;
  /** Scopes requested (a `scope` form parameter, or the assertion's `scope` claim for jwt_bearer). Default `[]`. */
  readonly scopes: readonly string[];
  /** jwt_bearer: the assertion's `aud` (required). Other grants: sent as the `audience` form parameter. */
  readonly audience?: string;
  /** Requests that get the token (at least one rule). */
  readonly rules: readonly RuleConfig[];
  /** Header set on matching requests. Default `Authorization`. */
  readonly header: string;
  /** Put before the token in the header value. Default `Bearer `. */
  readonly value_prefix: string;
  /** Refuse (502) a matching request when no token can be had, instead of forwarding it untouched. Default false. */
  readonly require: boolean;
  /** Extra headers on the token POST (an API key some vendors want), each value a secret source. */
  readonly token_endpoint_headers?: Readonly<Record<string, SecretSourceConfig>>;
}

/** The `config` block of an `oauth_token` transform, after schema defaults. */
export interface OAuthTokenConfig {
  readonly tokens: readonly TokenEntryConfig[];
}

/** One `tokens[]` entry as written: the fields the schema defaults are optional. */
export type TokenEntryInput = WithDefaults<TokenEntryConfig, 'scopes' | 'header' | 'value_prefix' | 'require'>;

/** The `config` block as written. */
export interface OAuthTokenInput {
  readonly tokens: readonly TokenEntryInput[];
}

/** Which credential fields each grant needs, and which it may take. */
export const GRANT_CREDENTIALS: Readonly<Record<Grant, { readonly required: readonly CredentialField[]; readonly optional: readonly CredentialField[] }>> = {
  refresh_token: { required: ['refresh_token', 'client_id'], optional: ['client_secret'] },
  client_credentials: { required: ['client_id', 'client_secret'], optional: [] },
  password: { required: ['username', 'password', 'client_id'], optional: ['client_secret'] },
  jwt_bearer: { required: ['issuer', 'subject', 'private_key'], optional: ['private_key_id'] },
};

const CREDENTIAL_FIELDS: readonly CredentialField[] = [
  'client_id',
  'client_secret',
  'refresh_token',
  'username',
  'password',
  'issuer',
  'subject',
  'private_key',
  'private_key_id',
];

/** An HTTP header field name (RFC 9110 token). */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/**
 * Headers the token POST sets itself (framing, the form's media type, client authentication):
 * `token_endpoint_headers` may not name them.
 */
const RESERVED_ENDPOINT_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'authorization', 'accept']);

/** For one grant: its credential fields required, the other grants' fields forbidden. */
function grantRule(grant: Grant): JsonSchema {
  const { required, optional } = GRANT_CREDENTIALS[grant];
  const allowed = new Set<string>([...required, ...optional]);
  const forbidden = CREDENTIAL_FIELDS.filter((field) => !allowed.has(field));
  return {
    if: { properties: { grant: { const: grant } }, required: ['grant'] },
    then: {
      required: grant === 'jwt_bearer' ? [...required, 'audience'] : [...required],
      properties: Object.fromEntries(forbidden.map((field) => [field, false])),
    },
  };
}

const entrySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['grant', 'token_endpoint', 'rules'],
  properties: {
    grant: { type: 'string', enum: ['refresh_token', 'client_credentials', 'password', 'jwt_bearer'] },
    token_endpoint: { type: 'string', pattern: '^[Hh][Tt][Tt][Pp][Ss]?://[^\\s]+$' },
    scopes: { type: 'array', items: { type: 'string', pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }, default: [] },
    audience: { type: 'string', minLength: 1 },
    rules: { ...rulesSchema, minItems: 1 },
    header: { type: 'string', pattern: HEADER_NAME, default: 'Authorization' },
    value_prefix: { type: 'string', pattern: '^[\\t\\x20-\\x7E]*$', default: 'Bearer ' },
    require: { type: 'boolean', default: false },
    token_endpoint_headers: {
      type: 'object',
      propertyNames: { pattern: HEADER_NAME },
      additionalProperties: secretSourceRef,
    },
    ...Object.fromEntries(CREDENTIAL_FIELDS.map((field) => [field, secretSourceRef])),
  },
  allOf: (['refresh_token', 'client_credentials', 'password', 'jwt_bearer'] as const).map(grantRule),
};

/** JSON Schema of the `oauth_token` transform's config. */
export const oauthTokenSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tokens'],
  properties: {
    tokens: { type: 'array', minItems: 1, items: entrySchema },
  },
};

/**
 * Checks what the schema cannot: the token endpoint is an absolute http(s) URL without
 * credentials or fragment, and `token_endpoint_headers` names no header the token POST sets
 * itself. Returns each endpoint as a URL, in entry order; throws a `ConfigError` naming the
 * fields at fault.
 */
export function checkEntries(config: OAuthTokenConfig): URL[] {
  const issues: ConfigIssue[] = [];
  const endpoints = config.tokens.map((entry, i) => {
    const path = `tokens[${i}]`;
    let url: URL | undefined;
    try {
      url = new URL(entry.token_endpoint);
    } catch {
      issues.push({ path: `${path}.token_endpoint`, message: `is not a URL (got ${entry.token_endpoint})` });
    }
    if (url !== undefined) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') issues.push({ path: `${path}.token_endpoint`, message: 'must be an http or https URL' });
      if (url.username !== '' || url.password !== '') issues.push({ path: `${path}.token_endpoint`, message: 'must not hold credentials; use the credential fields' });
      if (url.hash !== '') issues.push({ path: `${path}.token_endpoint`, message: 'must not have a fragment' });
    }
    for (const name of Object.keys(entry.token_endpoint_headers ?? {})) {
      if (RESERVED_ENDPOINT_HEADERS.has(name.toLowerCase())) {
        issues.push({ path: `${path}.token_endpoint_headers.${name}`, message: 'is set by the token request itself and cannot be configured' });
      }
    }
    return url;
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return endpoints as URL[];
}
