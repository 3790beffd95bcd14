/**
 * Test helpers: requests signed with placeholder credentials by the AWS SDK's signer (as a
 * workload's SDK signs them), and a check of the re-signed request as AWS would make it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { TestRequestInit, TransformRunResult } from '@proxy/core/testing';
import { checkSigV4, type SigV4Check, type SigV4Credentials } from '@proxy/test-kit';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest as HttpRequestShape } from '@smithy/types';

/** AWS's documented example key pair: what a workload holds. */
export const PLACEHOLDER = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', sessionToken: 'placeholder-session-token' };

/** What a workload's request looks like before signing. */
export interface UnsignedRequest {
  readonly method?: string;
  readonly host?: string;
  readonly path?: string;
  /** Decoded query parameters. */
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly region?: string;
  readonly service?: string;
}

function toHttpRequest(init: UnsignedRequest): HttpRequest {
  const host = init.host ?? 's3.us-east-1.amazonaws.com';
  return new HttpRequest({
    method: init.method ?? 'GET',
    protocol: 'https:',
    hostname: host,
    path: init.path ?? '/',
    query: { ...init.query },
    headers: { host, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
}

function placeholderSigner(init: UnsignedRequest): SignatureV4 {
  const service = init.service ?? 's3';
  return new SignatureV4({
    credentials: PLACEHOLDER,
    region: init.region ?? 'us-east-1',
    service,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: service !== 's3',
    applyChecksum: service === 's3',
  });
}

function toTestRequest(signed: HttpRequestShape, body: string | undefined, rawQuery?: string): TestRequestInit {
  const query = rawQuery ?? Object.entries(signed.query ?? {}).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
  return {
    method: signed.method,
    scheme: 'https',
    host: signed.hostname,
    path: signed.path,
    query,
    headers: { ...signed.headers },
    ...(body === undefined ? {} : { body }),
  };
}

/** The request signed in its `Authorization` header with the placeholder credentials. */
export async function headerSigned(init: UnsignedRequest, at = new Date()): Promise<TestRequestInit> {
  const signed = await placeholderSigner(init).sign(toHttpRequest(init), { signingDate: at });
  return toTestRequest(signed, init.body);
}

/** A presigned URL made with the placeholder credentials. */
export async function presigned(init: UnsignedRequest, options: { at?: Date; expiresIn?: number } = {}): Promise<TestRequestInit> {
  const signed = await placeholderSigner(init).presign(toHttpRequest(init), { signingDate: options.at ?? new Date(), expiresIn: options.expiresIn ?? 300 });
  return toTestRequest(signed, init.body);
}

/** The forwarded request of a run, checked as AWS would check it with `credentials`. */
export function checkForwarded(result: TransformRunResult, credentials: SigV4Credentials, now = Date.now()): Promise<SigV4Check> {
  const { request } = result;
  const headers: IncomingHttpHeaders = {};
  for (const name of new Set(request.headers.names().map((n) => n.toLowerCase()))) headers[name] = request.headers.getAll(name).join(', ');
  return checkSigV4({ method: request.method, url: request.query === '' ? request.path : `${request.path}?${request.query}`, headers, body: result.forwardedBody }, credentials, now);
}

/** Every header and query value of the forwarded request, as one text to search. */
export function forwardedText(result: TransformRunResult): string {
  const { request } = result;
  const lines = request.headers.names().map((name) => `${name}: ${request.headers.getAll(name).join(', ')}`);
  return [`${request.method} ${request.path}?${request.query}`, ...lines].join('\n');
}
