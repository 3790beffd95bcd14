import { rulesSchema, secretSourceRef, type JsonSchema, type RuleConfig, type SecretSourceConfig, type WithDefaults } from '@proxy/core';

/** `credentials_provider`: credentials from the AWS SDK's default chain instead of sources. */
export interface WorkloadIdentityConfig {
  readonly type: 'workload_identity';
  /** The region the chain's STS and SSO calls use; absent, the SDK discovers it (`AWS_REGION`, profile, metadata). */
  readonly region?: string;
}

/** The `config` block of an `aws_auth` transform, after schema defaults. */
export interface AwsAuthConfig {
  /** Source of the real access key id; with `secret_access_key`, instead of `credentials_provider`. */
  readonly access_key_id?: SecretSourceConfig;
  /** Source of the real secret access key. */
  readonly secret_access_key?: SecretSourceConfig;
  /** Source of a session token (temporary credentials); optional with the static pair. */
  readonly session_token?: SecretSourceConfig;
  readonly credentials_provider?: WorkloadIdentityConfig;
  /** Regions the transform signs for; absent or empty, any. */
  readonly allowed_regions: readonly string[];
  /** Services the transform signs for; absent or empty, any. */
  readonly allowed_services: readonly string[];
  /** Sign `UNSIGNED-PAYLOAD` instead of reading and hashing the body. Default false. */
  readonly unsigned_payload: boolean;
  /** Read and sign a chunked body (forwarded with a Content-Length). Default false. */
  readonly allow_chunked_body: boolean;
  /** Requests this transform re-signs; at least one. */
  readonly rules: readonly RuleConfig[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type AwsAuthInput = WithDefaults<AwsAuthConfig, 'allowed_regions' | 'allowed_services' | 'unsigned_payload' | 'allow_chunked_body'>;

/** A region or service name as it appears in a SigV4 credential scope. */
const SCOPE_PART = { type: 'string', pattern: '^[a-z0-9-]+$' };

/** A schema fragment refusing each of `keys`. */
const forbid = (keys: readonly string[]): JsonSchema => ({ properties: Object.fromEntries(keys.map((key) => [key, { not: {} }])) });

/** JSON Schema of the `aws_auth` config: exactly one of the static pair or `credentials_provider`. */
export const awsAuthSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    access_key_id: secretSourceRef,
    secret_access_key: secretSourceRef,
    session_token: secretSourceRef,
    credentials_provider: {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: {
        type: { const: 'workload_identity' },
        region: SCOPE_PART,
      },
    },
    allowed_regions: { type: 'array', items: SCOPE_PART, default: [] },
    allowed_services: { type: 'array', items: SCOPE_PART, default: [] },
    unsigned_payload: { type: 'boolean', default: false },
    allow_chunked_body: { type: 'boolean', default: false },
    rules: { ...rulesSchema, minItems: 1 },
  },
  required: ['rules'],
  // The static pair, or the provider: never both, never neither, never half a pair.
  dependencies: { access_key_id: ['secret_access_key'], secret_access_key: ['access_key_id'], session_token: ['access_key_id'] },
  anyOf: [{ required: ['access_key_id'] }, { required: ['credentials_provider'] }],
  if: { required: ['credentials_provider'] },
  then: forbid(['access_key_id', 'secret_access_key', 'session_token']),
};
