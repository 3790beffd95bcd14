/**
 * `header_capture`: copies the values of chosen request headers into the audit record (the
 * annotation `headers`, keyed by canonical header name). Credential headers are recorded as
 * present with the value `[redacted]`, never their value; every other value is cut at a byte
 * cap, and the number of values recorded per request is bounded. Observation only: it never
 * changes or refuses a request.
 */
import {
  CONTINUE,
  canonicalHeaderName,
  compileHeaderPatterns,
  compileRules,
  defineTransform,
  rulesSchema,
  type AnnotationValue,
  type HeaderPatternSet,
  type ProxyRequest,
  type RuleConfig,
  type SecretRedactor,
  type Trace,
  type TransformDefinition,
  type WithDefaults,
} from '@proxy/core';
import { REDACTED, compileRedaction } from './redaction.js';

export { DEFAULT_REDACTED_HEADERS, REDACTED } from './redaction.js';

/** The `config` block of a `header_capture` transform, after schema defaults. */
export interface HeaderCaptureConfig {
  /** Headers to record: names (case-insensitive) or `/regex/` patterns matched against the canonical name. */
  readonly headers: readonly string[];
  /** More headers recorded as present only, on top of the built-in credential list. */
  readonly redact_headers: readonly string[];
  /** Most bytes of one value recorded; a longer value is cut on a character boundary. */
  readonly max_value_bytes: number;
  /** Most header values recorded per request; the rest are counted in `headers_dropped`. */
  readonly max_headers: number;
  /** Requests whose headers are captured; empty means every request. */
  readonly rules: readonly RuleConfig[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type HeaderCaptureInput = WithDefaults<HeaderCaptureConfig, 'redact_headers' | 'max_value_bytes' | 'max_headers' | 'rules'>;

/** Default cap of one recorded value, in bytes. */
export const DEFAULT_MAX_VALUE_BYTES = 512;
/** Default number of header values recorded per request. */
export const DEFAULT_MAX_HEADERS = 32;

const headerList = { type: 'array', items: { type: 'string', format: 'header-pattern' } };

const headerCaptureSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['headers'],
  properties: {
    headers: { ...headerList, minItems: 1 },
    redact_headers: { ...headerList, default: [] },
    max_value_bytes: { type: 'integer', minimum: 1, maximum: 65536, default: DEFAULT_MAX_VALUE_BYTES },
    max_headers: { type: 'integer', minimum: 1, maximum: 1000, default: DEFAULT_MAX_HEADERS },
    rules: { ...rulesSchema, default: [] },
  },
};

/** The `header_capture` transform definition. */
export const headerCaptureTransform: TransformDefinition<HeaderCaptureConfig, HeaderCaptureInput> = defineTransform<HeaderCaptureConfig, HeaderCaptureInput>({
  name: 'header_capture',
  schema: headerCaptureSchema,
  create(config, env) {
    const scope = config.rules.length === 0 ? undefined : compileRules(config.rules);
    const capture: Capture = {
      wanted: compileHeaderPatterns(config.headers),
      redacted: compileRedaction(config.redact_headers),
      maxValueBytes: config.max_value_bytes,
      maxHeaders: config.max_headers,
      secrets: env.redactor,
    };
    return {
      onRequest(request, trace) {
        if (scope !== undefined && !scope.matches(request)) return CONTINUE;
        record(request, trace, capture);
        return CONTINUE;
      },
    };
  },
});

/** What one instance captures, compiled from its config. */
interface Capture {
  readonly wanted: HeaderPatternSet;
  readonly redacted: HeaderPatternSet;
  readonly maxValueBytes: number;
  readonly maxHeaders: number;
  /** The proxy's registry of secret values: a known secret in a captured value is replaced before it is recorded. */
  readonly secrets: SecretRedactor;
}

/** Writes the wanted headers of `request` to `trace`; writes nothing when none is present. */
function record(request: ProxyRequest, trace: Trace, capture: Capture): void {
  const headers: Record<string, string | string[]> = {};
  const truncated = new Set<string>();
  let recorded = 0;
  let dropped = 0;
  for (const [name, value] of request.headers) {
    if (capture.wanted.match(name) === undefined) continue;
    const key = canonicalHeaderName(name);
    if (capture.redacted.match(name) !== undefined) {
      // Present, never its value; however often it is sent, it is recorded once.
      if (headers[key] === undefined) {
        if (recorded === capture.maxHeaders) dropped++;
        else {
          headers[key] = REDACTED;
          recorded++;
        }
      }
      continue;
    }
    if (recorded === capture.maxHeaders) {
      dropped++;
      continue;
    }
    // Known secrets are replaced before the cut, so a cut can never leave part of one behind.
    const cut = cutUtf8(capture.secrets.redact(value), capture.maxValueBytes);
    if (cut.truncated) truncated.add(key);
    const previous = headers[key];
    headers[key] = previous === undefined ? cut.text : [...(typeof previous === 'string' ? [previous] : previous), cut.text];
    recorded++;
  }
  if (recorded > 0) trace.annotate('headers', headers as Record<string, AnnotationValue>);
  if (truncated.size > 0) trace.annotate('headers_truncated', [...truncated]);
  if (dropped > 0) trace.annotate('headers_dropped', dropped);
}

/** `text` cut to at most `limit` UTF-8 bytes, never inside a character. */
function cutUtf8(text: string, limit: number): { text: string; truncated: boolean } {
  // A string of `limit` UTF-16 units or fewer can still exceed `limit` bytes; a longer one may not.
  if (text.length <= limit / 3) return { text, truncated: false };
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= limit) return { text, truncated: false };
  let cut = limit;
  // Step back over continuation bytes (10xxxxxx) to the start of the character at the cut.
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return { text: bytes.subarray(0, cut).toString('utf8'), truncated: true };
}

export default headerCaptureTransform;
