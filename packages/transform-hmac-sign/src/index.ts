/**
 * `hmac_sign`: the proxy holds an HMAC key and signs requests on their way out. For each
 * request in scope it reads the body whole (refusing one it cannot read whole), renders the
 * configured message template over the request, a timestamp and the named credentials,
 * HMACs it and sets the configured headers (signature, timestamp, API key, ...) with the
 * casing written in config. Failures answer `{"error":"hmac_sign","reason":"<reason>"}` and
 * the request is not forwarded.
 */
import {
  CONTINUE,
  ConfigError,
  compileRules,
  compileTemplate,
  defineTransform,
  readSignedBody,
  rejectJson,
  type AnnotationValue,
  type CompiledTemplate,
  type Decision,
  type ProxyRequest,
  type SecretHandle,
  type Trace,
  type TransformDefinition,
} from '@proxy/core';
import { CREDENTIALS_PREFIX, HEADER_FIELDS, hmacSignSchema, KEY_CREDENTIAL, MESSAGE_FIELDS, type HmacSignConfig, type HmacSignInput } from './config.js';
import { decodeKey, formatTimestamp, KeyDecodeError, sign } from './signature.js';

export type { HmacAlgorithm, HmacSignConfig, HmacSignInput, KeyEncoding, OutputEncoding, TimestampFormat } from './config.js';
export { HEADER_FIELDS, hmacSignSchema, KEY_CREDENTIAL, MESSAGE_FIELDS } from './config.js';
export { decodeKey, formatTimestamp, KeyDecodeError, sign } from './signature.js';

/** The config name, also the `error` field of every error body. */
const NAME = 'hmac_sign';

/** Every reason this transform refuses a request with (status in the README). */
export const HmacSignReasons = {
  BODY_TRUNCATED: 'body_truncated',
  CHUNKED_BODY_NOT_ALLOWED: 'chunked_body_not_allowed',
  BODY_READ_FAILED: 'body_read_failed',
  BODY_MISSING: 'body_missing',
  CREDENTIAL_UNAVAILABLE: 'credential_unavailable',
  KEY_DECODE_FAILED: 'key_decode_failed',
  HEADER_TEMPLATE_FAILED: 'header_template_failed',
} as const;

/** What Node (and HTTP) accept in a header value: no CR, LF, NUL or other control character. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** One configured header: its name as written and its compiled value template. */
interface HeaderTemplate {
  readonly name: string;
  readonly value: CompiledTemplate;
}

/** Refuses with iron-proxy's error body and the contextual annotations. */
function refuse(trace: Trace, status: number, reason: string, annotations: Readonly<Record<string, AnnotationValue>> = {}): Decision {
  for (const [key, value] of Object.entries(annotations)) trace.annotate(key, value);
  return rejectJson(status, reason, { error: NAME, reason });
}

/** The request fields of the message template (`.Body` is added as bytes). */
function requestFields(request: ProxyRequest): Record<string, string> {
  return {
    Method: request.method,
    Path: request.path,
    PathWithQuery: request.query === '' ? request.path : `${request.path}?${request.query}`,
    Query: request.query,
    Host: request.host,
  };
}

/** The `hmac_sign` transform definition. */
export const hmacSignTransform: TransformDefinition<HmacSignConfig, HmacSignInput> = defineTransform<HmacSignConfig, HmacSignInput>({
  name: NAME,
  schema: hmacSignSchema,
  async create(config, env) {
    const names = Object.keys(config.credentials);
    // The schema requires `secret`; this guards direct callers of create().
    if (!names.includes(KEY_CREDENTIAL)) throw new ConfigError([{ path: `credentials.${KEY_CREDENTIAL}`, message: 'is required: it holds the HMAC key' }]);
    // The schema checked the templates against these names already; compiling here checks
    // them again for direct callers of create(), and turns them into renderers.
    const credentialFields = names.map((n) => `${CREDENTIALS_PREFIX}.${n}`);
    const message = compileTemplate(config.signature.message, [...MESSAGE_FIELDS, ...credentialFields]);
    const headers: HeaderTemplate[] = config.headers.map((h) => ({ name: h.name, value: compileTemplate(h.value, [...HEADER_FIELDS, ...credentialFields]) }));
    const scope = compileRules(config.rules);
    const { algorithm, key_encoding: keyEncoding, output_encoding: outputEncoding } = config.signature;

    const credentials: [string, SecretHandle][] = [];
    try {
      for (const name of names) credentials.push([name, await env.secrets.open(config.credentials[name]!)]);
    } catch (err) {
      for (const [, handle] of credentials) handle.close();
      throw err;
    }

    // The key is decoded again only when the secret's value changes (a refresh with `ttl`).
    let decoded: { readonly from: string; readonly key: Buffer } | undefined;
    const keyOf = (value: string): Buffer => {
      if (decoded?.from !== value) decoded = { from: value, key: decodeKey(value, keyEncoding) };
      return decoded.key;
    };

    return {
      async onRequest(request, trace) {
        // TLS passed through unread has no method, path, body or headers to sign or set.
        if (request.mode === 'sni-only') return CONTINUE;
        if (!scope.matches(request)) return CONTINUE;

        const body = await readSignedBody(request, config.allow_chunked_body);
        if ('refusal' in body) return refuse(trace, body.refusal.status, body.refusal.reason, body.refusal.annotations);

        const values: Record<string, string> = {};
        for (const [name, handle] of credentials) {
          try {
            values[`${CREDENTIALS_PREFIX}.${name}`] = handle.value();
          } catch (err) {
            // The message names the secret by its label and says why; never its value.
            const error = err instanceof Error ? err.message : String(err);
            return refuse(trace, 502, HmacSignReasons.CREDENTIAL_UNAVAILABLE, { credential: name, error });
          }
        }

        let key: Buffer;
        try {
          key = keyOf(values[`${CREDENTIALS_PREFIX}.${KEY_CREDENTIAL}`]!);
        } catch (err) {
          if (!(err instanceof KeyDecodeError)) throw err;
          return refuse(trace, 500, HmacSignReasons.KEY_DECODE_FAILED, { credential: KEY_CREDENTIAL, error: err.message });
        }

        const timestamp = formatTimestamp(config.timestamp.format, env.clock.now());
        const signed = message.renderBytes({ ...requestFields(request), ...values, Timestamp: timestamp, Body: body.bytes });
        const signature = sign(algorithm, key, signed, outputEncoding);

        const data = { ...values, Timestamp: timestamp, Signature: signature };
        const rendered: [string, string][] = [];
        for (const header of headers) {
          const value = header.value.render(data);
          if (!HEADER_VALUE.test(value)) {
            return refuse(trace, 500, HmacSignReasons.HEADER_TEMPLATE_FAILED, { header: header.name, error: 'the rendered value holds a character not allowed in a header' });
          }
          rendered.push([header.name, value]);
        }
        // All or nothing: no header is set unless every one rendered.
        for (const [name, value] of rendered) request.headers.set(name, value);
        if (body.chunked) {
          // Forwarded with a Content-Length: the upstream gets exactly the bytes that were signed.
          request.body.replace(body.bytes);
          env.logger.warn({ host: request.host }, 'hmac_sign: signed a chunked request body whose length the client never declared (allow_chunked_body)');
        }
        trace.annotate(
          'injected',
          headers.map((h) => `header:${h.name}`),
        );
        return CONTINUE;
      },
      close() {
        for (const [, handle] of credentials) handle.close();
      },
    };
  },
});

export default hmacSignTransform;
