/**
 * Between the proxy's request and response views and the `transform.v1` messages: what is sent
 * to the policy server (with every registered secret redacted) and how its answer is applied.
 */
import { isUtf8 } from 'node:buffer';
import { ErrorCodes, ProxyError, type HeaderList, type ProxyRequest, type ProxyResponse } from '@proxy/core';
import type { HeaderMap, HttpRequest, HttpResponse, TransformContext } from './service.js';

/** Replaces every registered secret in a text (the proxy's `SecretRedactor.redact`). */
export type Redact = (text: string) => string;

/**
 * What was redacted on the way out, so that values the server hands back unchanged get their
 * real value again: a server that replaces the headers wholesale, echoing the ones it does not
 * care about, must not turn an injected credential into `[redacted:...]`.
 */
export class Redactions {
  readonly #headers = new Map<string, string>();
  #url: { sent: string; original: string } | undefined;
  #body: { sent: Buffer; original: Buffer } | undefined;

  /** Redacts one header value, remembering the original when it changed. */
  header(name: string, value: string, redact: Redact): string {
    const sent = redact(value);
    if (sent !== value) this.#headers.set(`${name.toLowerCase()}\n${sent}`, value);
    return sent;
  }

  url(value: string, redact: Redact): string {
    const sent = redact(value);
    if (sent !== value) this.#url = { sent, original: value };
    return sent;
  }

  body(value: Buffer, redact: Redact): Buffer {
    const encoding = isUtf8(value) ? 'utf8' : 'latin1';
    const text = value.toString(encoding);
    const redacted = redact(text);
    if (redacted === text) return value;
    const sent = Buffer.from(redacted, encoding);
    this.#body = { sent, original: value };
    return sent;
  }

  /** The value to apply for a header value the server returned. */
  restoreHeader(name: string, value: string): string {
    return this.#headers.get(`${name.toLowerCase()}\n${value}`) ?? value;
  }

  restoreUrl(value: string): string {
    return this.#url?.sent === value ? this.#url.original : value;
  }

  restoreBody(value: Buffer): Buffer {
    return this.#body?.sent.equals(value) === true ? this.#body.original : value;
  }
}

/** Fields the proxy keeps whatever a server answers: the message framing and the Host line. */
const KEPT_FIELDS = new Set(['host', 'content-length', 'transfer-encoding']);

/** An HTTP field name (RFC 9110 token). */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A field value Node sends: no CR, LF, NUL or other control character. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The error of an answer the proxy cannot apply: the request fails closed. */
export function invalidAnswer(server: string, why: string): ProxyError {
  return new ProxyError(ErrorCodes.TRANSFORM_FAILED, `grpc policy server "${server}" answered something the proxy cannot apply: ${why}`, {
    status: 502,
    reason: 'grpc_invalid_response',
  });
}

/** Go's canonical header key (`content-type` → `Content-Type`), as iron-proxy's servers see keys. */
export function canonicalHeaderKey(name: string): string {
  if (!FIELD_NAME.test(name)) return name;
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** Groups header fields by canonical name, values in order; skips `Host`. */
function headerMap(headers: HeaderList, redactions: Redactions, redact: Redact): Record<string, { values: string[] }> {
  const out: Record<string, { values: string[] }> = {};
  for (const [name, value] of headers) {
    const key = canonicalHeaderKey(name);
    if (key === 'Host') continue;
    (out[key] ??= { values: [] }).values.push(redactions.header(name, value, redact));
  }
  return out;
}

/** `host[:port]` of a request's destination, the port omitted when it is the scheme's default. */
export function authorityOf(request: Pick<ProxyRequest, 'scheme' | 'host' | 'port'>): string {
  const host = request.host.includes(':') ? `[${request.host}]` : request.host;
  return request.port === (request.scheme === 'https' ? 443 : 80) ? host : `${host}:${request.port}`;
}

/** The connection facts the server gets with every call. */
export function contextOf(request: ProxyRequest): TransformContext {
  return {
    sni: request.sni ?? '',
    ...(request.tunnel === undefined ? {} : { tunnel: { target: request.tunnel.target, request_transforms: [] } }),
  };
}

/** The request as the server sees it; `body` only when it is to be sent. */
export function requestMessage(request: ProxyRequest, body: Buffer | undefined, redactions: Redactions, redact: Redact): HttpRequest {
  const url = request.query === '' ? request.path : `${request.path}?${request.query}`;
  return {
    method: request.method,
    url: redactions.url(url, redact),
    headers: headerMap(request.headers, redactions, redact),
    host: authorityOf(request),
    remote_addr: request.clientAddress,
    ...(body === undefined ? {} : { body: redactions.body(body, redact) }),
  };
}

/** The response as the server sees it; `body` only when it is to be sent. */
export function responseMessage(response: ProxyResponse, body: Buffer | undefined, redactions: Redactions, redact: Redact): HttpResponse {
  return {
    status_code: response.status,
    headers: headerMap(response.headers, redactions, redact),
    ...(body === undefined ? {} : { body: redactions.body(body, redact) }),
  };
}

/** Replaces every header but the kept ones with the server's, restoring redacted values it echoed. */
function replaceHeaders(headers: HeaderList, map: HeaderMap, redactions: Redactions, server: string): void {
  const fields: [string, string][] = [];
  for (const [name, entry] of Object.entries(map)) {
    if (KEPT_FIELDS.has(name.toLowerCase())) continue;
    if (!FIELD_NAME.test(name)) throw invalidAnswer(server, `header name ${JSON.stringify(name)} is not a valid field name`);
    for (const value of entry.values ?? []) {
      if (!FIELD_VALUE.test(value)) throw invalidAnswer(server, `header ${name} has a value with a control character`);
      fields.push([name, redactions.restoreHeader(name, value)]);
    }
  }
  for (let i = headers.size - 1; i >= 0; i--) if (!KEPT_FIELDS.has(headers.keyAt(i)!)) headers.deleteAt(i);
  for (const [name, value] of fields) headers.append(name, value);
}

/** A destination a server asked for. */
export interface Destination {
  readonly host: string;
  readonly port: number;
}

/** Parses `host[:port]` (IPv6 in brackets); the port defaults to the scheme's. */
export function parseAuthority(text: string, scheme: 'http' | 'https', server: string): Destination {
  const bad = (): ProxyError => invalidAnswer(server, `host ${JSON.stringify(text)} is not host[:port]`);
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1]!;
    port = bracketed[2];
  } else {
    const parts = text.split(':');
    if (parts.length > 2) throw bad();
    host = parts[0]!;
    port = parts[1];
  }
  if (host === '' || (port !== undefined && !/^\d{1,5}$/.test(port))) throw bad();
  const number = port === undefined ? (scheme === 'https' ? 443 : 80) : Number(port);
  if (number < 1 || number > 65_535) throw bad();
  return { host, port: number };
}

/**
 * Applies a `modified_request` field by field (an empty field changes nothing): method, URL
 * (path and query, origin form only), headers (all replaced, except the framing fields and
 * `Host`), body. Returns the destination its `host` names, when it differs from the request's.
 */
export function applyModifiedRequest(request: ProxyRequest, modified: HttpRequest, redactions: Redactions, server: string): Destination | undefined {
  if (modified.method !== undefined && modified.method !== '') {
    if (!FIELD_NAME.test(modified.method)) throw invalidAnswer(server, `method ${JSON.stringify(modified.method)} is not a valid method`);
    request.method = modified.method;
  }
  if (modified.url !== undefined && modified.url !== '') {
    const url = redactions.restoreUrl(modified.url);
    if (!/^\/[\x21-\x7e\x80-\xff]*$/.test(url) || url.includes('#')) {
      throw invalidAnswer(server, 'url must be a path with an optional query (`/path?query`), without spaces or a fragment');
    }
    const at = url.indexOf('?');
    request.path = at < 0 ? url : url.slice(0, at);
    request.query = at < 0 ? '' : url.slice(at + 1);
  }
  if (modified.headers !== undefined && Object.keys(modified.headers).length > 0) replaceHeaders(request.headers, modified.headers, redactions, server);
  if (modified.body !== undefined) request.body.replace(redactions.restoreBody(modified.body));
  if (modified.host === undefined || modified.host === '') return undefined;
  const destination = parseAuthority(modified.host, request.scheme, server);
  const host = destination.host.toLowerCase().replace(/\.$/, '');
  return host === request.host && destination.port === request.port ? undefined : destination;
}

/** Applies a `modified_response` field by field: status (when not 0), headers (all replaced but framing), body. */
export function applyModifiedResponse(response: ProxyResponse, modified: HttpResponse, redactions: Redactions, server: string): void {
  if (modified.status_code !== undefined && modified.status_code !== 0) response.status = validStatus(modified.status_code, server);
  if (modified.headers !== undefined && Object.keys(modified.headers).length > 0) replaceHeaders(response.headers, modified.headers, redactions, server);
  if (modified.body !== undefined) response.body.replace(redactions.restoreBody(modified.body));
}

/** A status the proxy can send. */
export function validStatus(status: number, server: string): number {
  if (!Number.isInteger(status) || status < 200 || status > 599) throw invalidAnswer(server, `status ${status} is not a final HTTP status (200-599)`);
  return status;
}
