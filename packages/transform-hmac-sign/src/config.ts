import { rulesSchema, secretSourceRef, type JsonSchema, type RuleConfig, type SecretSourceConfig, type WithDefaults } from '@proxy/core';

/** How `.Timestamp` is written: Unix time in seconds, milliseconds or nanoseconds, or RFC 3339 (UTC). */
export type TimestampFormat = 'unix_seconds' | 'unix_millis' | 'unix_nanos' | 'rfc3339';
/** The HMAC hash. */
export type HmacAlgorithm = 'sha256' | 'sha512' | 'sha1';
/** How the `secret` credential is turned into key bytes. */
export type KeyEncoding = 'raw' | 'base64' | 'hex';
/** How the signature bytes are written into `.Signature`. */
export type OutputEncoding = 'base64' | 'hex';

/** The `config` block of an `hmac_sign` transform, after schema defaults. */
export interface HmacSignConfig {
  readonly timestamp: { readonly format: TimestampFormat };
  readonly signature: {
    readonly algorithm: HmacAlgorithm;
    readonly key_encoding: KeyEncoding;
    readonly output_encoding: OutputEncoding;
    /** Template of the signed message over {@link MESSAGE_FIELDS} and `.Credentials.<name>`. */
    readonly message: string;
  };
  /** Secret sources by name; `secret` is the HMAC key. Each is `.Credentials.<name>` in templates. */
  readonly credentials: Readonly<Record<string, SecretSourceConfig>>;
  /** Headers set in order, with the casing written; values are templates over {@link HEADER_FIELDS} and `.Credentials.<name>`. */
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  /** Sign (and forward with Content-Length) a chunked body instead of refusing it. Default false. */
  readonly allow_chunked_body: boolean;
  /** The requests that are signed (at least one rule). */
  readonly rules: readonly RuleConfig[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type HmacSignInput = WithDefaults<HmacSignConfig, 'allow_chunked_body'>;

/** The credential that holds the HMAC key. */
export const KEY_CREDENTIAL = 'secret';

/** The request fields the message template may use, besides `.Credentials.<name>`. */
export const MESSAGE_FIELDS: readonly string[] = ['Timestamp', 'Method', 'Path', 'PathWithQuery', 'Query', 'Host', 'Body'];

/** The fields header templates may use, besides `.Credentials.<name>`. */
export const HEADER_FIELDS: readonly string[] = ['Timestamp', 'Signature'];

/** The template prefix under which each credential is reachable: `.Credentials.<name>`. */
export const CREDENTIALS_PREFIX = 'Credentials';

/** An HTTP field-name token (RFC 9110). */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/** JSON Schema of the `hmac_sign` transform's config. */
export const hmacSignSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['timestamp', 'signature', 'credentials', 'headers', 'rules'],
  properties: {
    timestamp: {
      type: 'object',
      additionalProperties: false,
      required: ['format'],
      properties: { format: { type: 'string', enum: ['unix_seconds', 'unix_millis', 'unix_nanos', 'rfc3339'] } },
    },
    signature: {
      type: 'object',
      additionalProperties: false,
      required: ['algorithm', 'key_encoding', 'output_encoding', 'message'],
      properties: {
        algorithm: { type: 'string', enum: ['sha256', 'sha512', 'sha1'] },
        key_encoding: { type: 'string', enum: ['raw', 'base64', 'hex'] },
        output_encoding: { type: 'string', enum: ['base64', 'hex'] },
        // From signature.message, `2/credentials` is the sibling `credentials` map.
        message: { type: 'string', proxyTemplate: { fields: MESSAGE_FIELDS, keyFields: { [CREDENTIALS_PREFIX]: '2/credentials' } } },
      },
    },
    credentials: {
      type: 'object',
      required: [KEY_CREDENTIAL],
      additionalProperties: secretSourceRef,
    },
    headers: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'value'],
        properties: {
          name: { type: 'string', pattern: HEADER_NAME },
          // From headers[i].value, `3/credentials` is the transform's `credentials` map.
          value: { type: 'string', proxyTemplate: { fields: HEADER_FIELDS, keyFields: { [CREDENTIALS_PREFIX]: '3/credentials' } } },
        },
      },
    },
    allow_chunked_body: { type: 'boolean', default: false },
    rules: { ...rulesSchema, minItems: 1 },
  },
};
