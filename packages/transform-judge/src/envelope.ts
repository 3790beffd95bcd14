/**
 * The request envelope: the JSON the model judges. Every field has iron-proxy's cap, and every
 * cut is announced in `warnings` so the model knows it did not see everything (the system
 * prompt tells it to prefer DENY when what is missing could matter).
 */
import type { ProxyRequest } from '@proxy/core';
import { summarizeMultipart, type MultipartSummary } from './multipart.js';
import { capUtf8, decodeUtf8, utf8Prefix } from './utf8.js';

/** The caps, in bytes. */
export const ENVELOPE_LIMITS = Object.freeze({
  body: 16_384,
  url: 2_048,
  /** Total of header names and values. */
  headers: 4_096,
  headerValue: 512,
});

/**
 * Headers emitted first, in this order, whatever else the request carries: a client packing the
 * request with junk headers cannot push these out of the model's view.
 */
export const PRIORITY_HEADERS: readonly string[] = [
  'host',
  'origin',
  'referer',
  'x-forwarded-for',
  'x-forwarded-host',
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'authorization',
  'cookie',
];

/**
 * How far past the body cap the body is decoded before redaction, so that a known secret
 * straddling the cut is still recognised (and not half-shown).
 */
const REDACTION_SLACK = 4_096;

/** What the model receives, as JSON. */
export interface Envelope {
  readonly method: string;
  /** The request target: path and query, as on the request line. */
  readonly url: string;
  /** The destination, with its port when not the scheme's default. */
  readonly host: string;
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  readonly body?: string;
  readonly warnings: readonly string[];
  readonly multipart_summary?: MultipartSummary;
}

/**
 * Replaces credentials the proxy knows (values fetched by secret sources, tokens minted by
 * transforms) in a piece of request text: whatever the pipeline order, such a value never
 * reaches the LLM provider.
 */
export type Scrub = (text: string) => string;

/** Builds the envelope of `request`, whose body (when it has one) is `body`. */
export function buildEnvelope(request: ProxyRequest, body: Buffer | undefined, scrub: Scrub): Envelope {
  const warnings: string[] = [];
  const clean = (field: string, text: string): string => {
    const scrubbed = scrub(text);
    if (scrubbed !== text) warnings.push(`${field}: a credential known to the proxy was replaced by a [redacted:<name>] marker`);
    return scrubbed;
  };
  if (request.mode === 'sni-only') {
    warnings.push('TLS passthrough (sni-only): only the destination host is known; method, path, headers and body cannot be seen');
  }

  const target = request.query === '' ? request.path : `${request.path}?${request.query}`;
  const url = capUtf8(clean('url', target), ENVELOPE_LIMITS.url);
  if (url.truncated) warnings.push(`url truncated: original ${url.bytes} bytes, first ${ENVELOPE_LIMITS.url} kept`);

  const headers = envelopeHeaders(request, clean, warnings);
  const bodyPart = envelopeBody(request, body, clean, warnings);
  return {
    method: request.method,
    url: url.text,
    host: destination(request),
    headers,
    ...(bodyPart.text === undefined ? {} : { body: bodyPart.text }),
    warnings,
    ...(bodyPart.summary === undefined ? {} : { multipart_summary: bodyPart.summary }),
  };
}

function destination(request: ProxyRequest): string {
  const host = request.host.includes(':') ? `[${request.host}]` : request.host;
  const defaultPort = request.scheme === 'https' ? 443 : 80;
  return request.port === defaultPort ? host : `${host}:${request.port}`;
}

/** Priority headers first, then the rest by name; each value capped, the whole within the budget. */
function envelopeHeaders(request: ProxyRequest, clean: (field: string, text: string) => string, warnings: string[]): Envelope['headers'] {
  const all: { name: string; value: string; rank: number; lower: string; order: number }[] = [];
  for (let i = 0; i < request.headers.size; i++) {
    const [name, value] = request.headers.at(i)!;
    const lower = name.toLowerCase();
    const priority = PRIORITY_HEADERS.indexOf(lower);
    all.push({ name, value, lower, rank: priority < 0 ? PRIORITY_HEADERS.length : priority, order: i });
  }
  all.sort((a, b) => a.rank - b.rank || (a.lower < b.lower ? -1 : a.lower > b.lower ? 1 : 0) || a.order - b.order);

  const out: { name: string; value: string }[] = [];
  let used = 0;
  for (const header of all) {
    const capped = capUtf8(clean(`header ${header.name}`, header.value), ENVELOPE_LIMITS.headerValue);
    const value = capped.truncated ? `${capped.text}... [truncated, original ${capped.bytes} bytes]` : capped.text;
    const size = Buffer.byteLength(header.name) + Buffer.byteLength(value);
    if (used + size > ENVELOPE_LIMITS.headers) {
      warnings.push(`headers truncated: ${all.length - out.length} of ${all.length} headers omitted (${ENVELOPE_LIMITS.headers}-byte budget)`);
      break;
    }
    if (capped.truncated) warnings.push(`header ${header.name} value truncated: original ${capped.bytes} bytes, first ${ENVELOPE_LIMITS.headerValue} kept`);
    used += size;
    out.push({ name: header.name, value });
  }
  return out;
}

/** The body as text within its cap, or nothing (binary, or no body), and a multipart summary when parts were lost. */
function envelopeBody(
  request: ProxyRequest,
  body: Buffer | undefined,
  clean: (field: string, text: string) => string,
  warnings: string[],
): { text?: string; summary?: MultipartSummary } {
  if (body === undefined || body.length === 0) return {};
  const contentType = request.headers.get('content-type') ?? '';
  const multipart = /^\s*multipart\//i.test(contentType);
  const decoded = decodeUtf8(utf8Prefix(body, ENVELOPE_LIMITS.body + REDACTION_SLACK));
  if (decoded === undefined) {
    warnings.push(`body omitted: not valid UTF-8 (${body.length} bytes)`);
    return multipart ? { summary: summarizeMultipart(contentType, body) } : {};
  }
  const capped = capUtf8(clean('body', decoded), ENVELOPE_LIMITS.body);
  const truncated = body.length > ENVELOPE_LIMITS.body || capped.truncated;
  if (!truncated) return { text: capped.text };
  warnings.push(`body truncated: original ${body.length} bytes, first ${Buffer.byteLength(capped.text)} kept`);
  return multipart ? { text: capped.text, summary: summarizeMultipart(contentType, body) } : { text: capped.text };
}
