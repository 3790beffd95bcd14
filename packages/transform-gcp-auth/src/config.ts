import { rulesSchema, secretSourceRef, type JsonSchema, type RuleConfig, type SecretSourceConfig, type WithDefaults } from '@proxy/core';

/** `credentials_provider`: Google's Application Default Credentials chain. */
export interface CredentialsProviderConfig {
  readonly type: 'workload_identity';
}

/** The `config` block of a `gcp_auth` transform, after schema defaults. Exactly one credential field is set. */
export interface GcpAuthConfig {
  /** A service-account keyfile on disk, read at startup (relative paths from the config's directory). */
  readonly keyfile_path?: string;
  /** A service-account keyfile from a secret source; a source with `ttl` is re-read and a new key takes effect. */
  readonly keyfile?: SecretSourceConfig;
  /** Credentials from the Application Default Credentials chain instead of a keyfile. */
  readonly credentials_provider?: CredentialsProviderConfig;
  /** Domain-wide delegation: the Workspace user the token acts as (keyfiles only). */
  readonly subject?: string;
  /** OAuth scopes of the minted tokens (at least one). */
  readonly scopes: readonly string[];
  /** Requests that get the token; empty (the default) means every request. */
  readonly rules: readonly RuleConfig[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type GcpAuthInput = WithDefaults<GcpAuthConfig, 'rules'>;

/** An OAuth scope: a non-empty string without spaces, quotes or backslashes (RFC 6749 §3.3). */
export const scopeSchema: JsonSchema = { type: 'string', pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' };

/** JSON Schema of the `gcp_auth` config. */
export const gcpAuthSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['scopes'],
  properties: {
    keyfile_path: { type: 'string', minLength: 1 },
    keyfile: secretSourceRef,
    credentials_provider: {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: { type: { type: 'string', enum: ['workload_identity'] } },
    },
    subject: { type: 'string', minLength: 1 },
    scopes: { type: 'array', minItems: 1, items: scopeSchema },
    rules: { ...rulesSchema, default: [] },
  },
  oneOf: [{ required: ['keyfile_path'] }, { required: ['keyfile'] }, { required: ['credentials_provider'] }],
  // Domain-wide delegation signs its own assertion: it needs a keyfile.
  not: { required: ['credentials_provider', 'subject'] },
};
