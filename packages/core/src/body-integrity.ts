import { ProxyError } from './errors.js';
import type { ProxyRequest } from './request.js';
import type { AnnotationValue } from './transform.js';

/** Why a body cannot be signed: the status and reason the client gets, and what the audit record says. */
export interface BodyRefusal {
  readonly status: number;
  readonly reason: 'body_truncated' | 'chunked_body_not_allowed' | 'body_read_failed' | 'body_missing';
  readonly annotations: Readonly<Record<string, AnnotationValue>>;
}

/** The body to sign, or why it cannot be signed. */
export type SignedBody = { readonly bytes: Buffer; readonly chunked: boolean } | { readonly refusal: BodyRefusal };

/**
 * Reads the request body to sign it, enforcing iron-proxy's body-integrity rules: the signed
 * bytes must be the bytes the client sent, all of them.
 *
 * - A chunked body is refused (400 `chunked_body_not_allowed`) unless `allowChunked`; then it
 *   is read whole (the caller forwards it with a Content-Length).
 * - A body over `proxy.max_request_body_bytes` cannot be read whole: 413 `body_truncated`.
 * - Fewer bytes than Content-Length: 413 `body_truncated`; none at all: 400 `body_missing`.
 * - A body the client stopped sending (a broken stream): 400 `body_read_failed`.
 *
 * Any other read failure (the proxy's memory for buffered bodies is spent, for the whole proxy
 * or for this connection) is thrown as is: it is the proxy's condition, answered with its own
 * status.
 */
export async function readSignedBody(request: ProxyRequest, allowChunked: boolean): Promise<SignedBody> {
  const { body } = request;
  const declared = body.declaredLength;
  if (body.chunked && !allowChunked) return { refusal: { status: 400, reason: 'chunked_body_not_allowed', annotations: {} } };
  let bytes: Buffer;
  try {
    bytes = await body.read();
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    if (err.reason === 'body_too_large') {
      const annotations: Record<string, AnnotationValue> = { max_request_body_bytes: body.limit };
      if (declared !== undefined) annotations.content_length = declared;
      return { refusal: { status: 413, reason: 'body_truncated', annotations } };
    }
    if (err.reason === 'body_read_failed') return { refusal: { status: 400, reason: 'body_read_failed', annotations: {} } };
    throw err;
  }
  if (declared !== undefined && bytes.length < declared) {
    const annotations = { content_length: declared, buffered_length: bytes.length };
    return { refusal: bytes.length === 0 ? { status: 400, reason: 'body_missing', annotations } : { status: 413, reason: 'body_truncated', annotations } };
  }
  return { bytes, chunked: body.chunked };
}
