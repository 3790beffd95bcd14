/**
 * `body_capture`: records the request body of matching requests in the audit record
 * (`request_body`, up to a cap, and `request_body_truncated` when the body was longer).
 * Observation only: it never changes or refuses a request; a body that cannot be read is
 * noted as `request_body_error` and the request goes on.
 */
import {
  CONTINUE,
  ProxyError,
  compileRules,
  defineTransform,
  rulesSchema,
  type Decision,
  type ProxyRequest,
  type RuleConfig,
  type Trace,
  type TransformDefinition,
  type WithDefaults,
} from '@proxy/core';

/** The `config` block of a `body_capture` transform, after schema defaults. */
export interface BodyCaptureConfig {
  /** Most bytes of a body recorded; independent of `proxy.max_request_body_bytes`. */
  readonly max_request_body_bytes: number;
  /** Requests whose bodies are captured; empty means every request. */
  readonly rules: readonly RuleConfig[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type BodyCaptureInput = WithDefaults<BodyCaptureConfig, 'max_request_body_bytes' | 'rules'>;

/** Default capture cap (16 KiB). */
export const DEFAULT_CAPTURE_BYTES = 16384;

const bodyCaptureSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_request_body_bytes: { type: 'integer', minimum: 1, default: DEFAULT_CAPTURE_BYTES },
    rules: { ...rulesSchema, default: [] },
  },
};

/** The `body_capture` transform definition. */
export const bodyCaptureTransform: TransformDefinition<BodyCaptureConfig, BodyCaptureInput> = defineTransform<BodyCaptureConfig, BodyCaptureInput>({
  name: 'body_capture',
  schema: bodyCaptureSchema,
  create(config) {
    const scope = config.rules.length === 0 ? undefined : compileRules(config.rules);
    const cap = config.max_request_body_bytes;
    return {
      onRequest(request, trace) {
        // Synchronous when there is nothing to capture: no promise for body-less requests.
        if (scope !== undefined && !scope.matches(request)) return CONTINUE;
        if (!request.body.present) return CONTINUE;
        return capture(request, trace, cap);
      },
    };
  },
});

/** Reads the body and records it in the trace, cut at `cap` bytes on a character boundary. */
async function capture(request: ProxyRequest, trace: Trace, cap: number): Promise<Decision> {
  let body: Buffer;
  try {
    body = await request.body.read();
  } catch (err) {
    trace.annotate('request_body_error', err instanceof ProxyError ? err.reason : 'read_failed');
    return CONTINUE;
  }
  if (body.length <= cap) {
    trace.annotate('request_body', body.toString('utf8'));
  } else {
    trace.annotate('request_body', body.subarray(0, utf8Boundary(body, cap)).toString('utf8'));
    trace.annotate('request_body_truncated', true);
  }
  return CONTINUE;
}

/** The largest cut point <= `limit` that does not split a UTF-8 sequence. */
function utf8Boundary(bytes: Buffer, limit: number): number {
  let cut = limit;
  // Step back over continuation bytes (10xxxxxx) to the start of the character at the cut.
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return cut;
}

export default bodyCaptureTransform;
