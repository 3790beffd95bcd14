import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { parseSigV4Authorization, type SignedRequest } from './sigv4.js';

/** The credentials a SigV4 check accepts. */
export interface SigV4Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** What a request's SigV4 signature says, and whether it holds. */
export interface SigV4Check {
  /** `header` (Authorization), `query` (a presigned URL) or `none` (no SigV4 signature at all). */
  readonly kind: 'header' | 'query' | 'none';
  /** The access key id the request was signed with, when it names one. */
  readonly accessKeyId?: string;
  readonly region?: string;
  readonly service?: string;
  /** The payload hash the signature covers (`x-amz-content-sha256`, or `UNSIGNED-PAYLOAD` for S3 presigned URLs). */
  readonly payloadHash?: string;
  /** The AWS error code when the signature does not hold; undefined when it does. */
  readonly error?: 'MissingAuthenticationToken' | 'InvalidAccessKeyId' | 'SignatureDoesNotMatch' | 'RequestExpired' | 'XAmzContentSHA256Mismatch';
}

/** How far a header signature's time may be from the server's clock, as AWS allows. */
const MAX_SKEW_MS = 15 * 60_000;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const PRESIGN_PARAMS = new Set(['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token']);
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const Sha256 = Hash.bind(null, 'sha256');

/**
 * Checks a received request's SigV4 signature (an `Authorization` header or a presigned URL)
 * the way AWS does, by recomputing it with the AWS SDK's own signer from what was received:
 * the method, path, query, the signed headers, the payload hash (checked against the body when
 * it is a SHA-256), the scope and the signing time (15 minutes of skew for a header signature,
 * `X-Amz-Expires` for a presigned URL).
 */
export async function checkSigV4(request: SignedRequest, credentials: SigV4Credentials, now: number = Date.now()): Promise<SigV4Check> {
  const [path = '/', rawQuery = ''] = request.url.split(/\?(.*)/s, 2);
  const query = parseQuery(rawQuery);
  if (request.headers.authorization !== undefined) return checkHeader(request, path, query, credentials, now);
  if (query.some(([name]) => name === 'X-Amz-Credential')) return checkQuery(request, path, query, credentials, now);
  return { kind: 'none', error: 'MissingAuthenticationToken' };
}

async function checkHeader(request: SignedRequest, path: string, query: [string, string][], credentials: SigV4Credentials, now: number): Promise<SigV4Check> {
  const auth = parseSigV4Authorization(header(request.headers, 'authorization'));
  if (auth === undefined) return { kind: 'header', error: 'MissingAuthenticationToken' };
  const base = { kind: 'header' as const, accessKeyId: auth.accessKeyId, region: auth.region, service: auth.service };
  if (auth.accessKeyId !== credentials.accessKeyId) return { ...base, error: 'InvalidAccessKeyId' };
  const signedAt = parseAmzDate(header(request.headers, 'x-amz-date'));
  if (signedAt === undefined || Math.abs(now - signedAt.getTime()) > MAX_SKEW_MS) return { ...base, error: 'RequestExpired' };
  const payloadHash = header(request.headers, 'x-amz-content-sha256') ?? sha256Hex(request.body);
  if (/^[0-9a-f]{64}$/.test(payloadHash) && payloadHash !== sha256Hex(request.body)) return { ...base, payloadHash, error: 'XAmzContentSHA256Mismatch' };
  const message = toHttpRequest(request, path, query, auth.signedHeaders);
  message.headers['x-amz-content-sha256'] = payloadHash;
  const signed = await signer(auth.service, auth.region, credentials).sign(message, {
    signingDate: signedAt,
    signableHeaders: new Set(auth.signedHeaders),
    unsignableHeaders: new Set(auth.signedHeaders.includes('x-amz-content-sha256') ? [] : ['x-amz-content-sha256']),
  });
  const expected = parseSigV4Authorization(signed.headers.authorization);
  const same = expected !== undefined && expected.signedHeaders.join(';') === auth.signedHeaders.join(';') && equalHex(expected.signature, auth.signature);
  return { ...base, payloadHash, ...(same ? {} : { error: 'SignatureDoesNotMatch' as const }) };
}

async function checkQuery(request: SignedRequest, path: string, query: [string, string][], credentials: SigV4Credentials, now: number): Promise<SigV4Check> {
  const param = (name: string): string | undefined => query.find(([n]) => n === name)?.[1];
  const scope = /^([^/]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request$/.exec(param('X-Amz-Credential') ?? '');
  if (scope === null) return { kind: 'query', error: 'MissingAuthenticationToken' };
  const [, accessKeyId = '', , region = '', service = ''] = scope;
  const base = { kind: 'query' as const, accessKeyId, region, service };
  if (accessKeyId !== credentials.accessKeyId) return { ...base, error: 'InvalidAccessKeyId' };
  const signedAt = parseAmzDate(param('X-Amz-Date'));
  const expires = Number(param('X-Amz-Expires'));
  if (signedAt === undefined || !Number.isInteger(expires) || now > signedAt.getTime() + expires * 1000) return { ...base, error: 'RequestExpired' };
  const signedHeaders = (param('X-Amz-SignedHeaders') ?? '').split(';');
  const message = toHttpRequest(request, path, query.filter(([name]) => !PRESIGN_PARAMS.has(name)), signedHeaders);
  const payloadHash = param('x-amz-content-sha256') ?? (service.startsWith('s3') ? UNSIGNED_PAYLOAD : sha256Hex(request.body));
  message.headers['x-amz-content-sha256'] = payloadHash;
  const presigned = await signer(service, region, credentials).presign(message, {
    signingDate: signedAt,
    expiresIn: expires,
    signableHeaders: new Set(signedHeaders),
    unsignableHeaders: new Set(['x-amz-content-sha256']),
    unhoistableHeaders: new Set(Object.keys(message.headers)),
  });
  const same = presigned.query?.['X-Amz-SignedHeaders'] === param('X-Amz-SignedHeaders') && equalHex(String(presigned.query?.['X-Amz-Signature']), param('X-Amz-Signature') ?? '');
  return { ...base, payloadHash, ...(same ? {} : { error: 'SignatureDoesNotMatch' as const }) };
}

/** S3 signs the path as sent; other services sign it encoded once more (the SDK's own settings). */
function signer(service: string, region: string, credentials: SigV4Credentials): SignatureV4 {
  return new SignatureV4({ credentials, region, service, sha256: Sha256, uriEscapePath: !service.startsWith('s3'), applyChecksum: false });
}

/** The received request as the signer sees it, with only the headers that were signed. */
function toHttpRequest(request: SignedRequest, path: string, query: readonly [string, string][], signedHeaders: readonly string[]): HttpRequest {
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = header(request.headers, name);
    if (value !== undefined) headers[name] = value;
  }
  const q = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of query) {
    const current = q[name];
    q[name] = current === undefined ? value : Array.isArray(current) ? [...current, value] : [current, value];
  }
  return new HttpRequest({ method: request.method, hostname: (headers.host ?? '').replace(/:\d+$/, ''), path, query: q, headers });
}

function parseQuery(raw: string): [string, string][] {
  return raw
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const at = pair.indexOf('=');
      return at < 0 ? [decodeURIComponent(pair), ''] : [decodeURIComponent(pair.slice(0, at)), decodeURIComponent(pair.slice(at + 1))];
    });
}

function parseAmzDate(value: string | undefined): Date | undefined {
  const m = value === undefined ? null : AMZ_DATE.exec(value);
  return m === null ? undefined : new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
