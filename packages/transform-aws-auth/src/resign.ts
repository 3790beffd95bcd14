import type { ProxyRequest } from '@proxy/core';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';
import { escapeUri } from '@smithy/util-uri-escape';
import { SIGNATURE_PARAMS, type HeaderSignature, type InboundScope, type QuerySignature } from './inbound.js';
import { parseQuery, toSignerQuery } from './query.js';

/** The payload hash of a request signed without hashing its body. */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/** The headers a header signature sets; the workload's versions are removed first. */
const SIGNATURE_HEADERS = ['Authorization', 'X-Amz-Date', 'X-Amz-Security-Token', 'X-Amz-Content-Sha256'] as const;

/**
 * Headers never carried over from the workload's signed-header list: the signature headers
 * (signed afresh) and hop-by-hop headers, which the proxy does not forward as received.
 */
const NOT_RESIGNED = new Set([
  'authorization',
  'x-amz-date',
  'x-amz-security-token',
  'x-amz-content-sha256',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The SHA-256 constructor the signer hashes with. */
const Sha256 = Hash.bind(null, 'sha256');

/**
 * A signer for the workload's scope. S3 signs the path as sent (`uriEscapePath: false`, as the
 * AWS SDK's S3 client does); every other service signs it encoded once more.
 */
function signerFor(scope: InboundScope, credentials: AwsCredentialIdentity): SignatureV4 {
  return new SignatureV4({
    credentials,
    region: scope.region,
    service: scope.service,
    sha256: Sha256,
    uriEscapePath: !scope.service.startsWith('s3'),
    applyChecksum: false,
  });
}

/**
 * The request as the signer sees it: its path and query as they will be forwarded and the
 * headers the workload signed (those present; `host` always), with their values as sent.
 */
function signable(request: ProxyRequest, scope: InboundScope, query: Record<string, string | string[]>): { message: HttpRequest; names: Set<string> } {
  const headers: Record<string, string> = {};
  const names = new Set<string>();
  for (const name of ['host', ...scope.signedHeaders]) {
    if (NOT_RESIGNED.has(name) || names.has(name)) continue;
    const values = request.headers.getAll(name);
    if (values.length === 0) continue;
    headers[name] = values.join(',');
    names.add(name);
  }
  const message = new HttpRequest({
    method: request.method,
    protocol: `${request.scheme}:`,
    hostname: request.host,
    port: request.port,
    path: request.path,
    query,
    headers,
  });
  return { message, names };
}

/**
 * Re-signs a header-signed request in place: the workload's `Authorization`, `X-Amz-Date`,
 * `X-Amz-Security-Token` and `X-Amz-Content-Sha256` are replaced by a signature of the same
 * scope and signed headers, made now with `credentials` over `payloadHash`. Returns the names
 * of the headers set.
 */
export async function resignHeaders(
  request: ProxyRequest,
  inbound: HeaderSignature,
  credentials: AwsCredentialIdentity,
  payloadHash: string,
  now: Date,
): Promise<string[]> {
  const { message, names } = signable(request, inbound, toSignerQuery(parseQuery(request.query)));
  message.headers['x-amz-content-sha256'] = payloadHash;
  names.add('x-amz-content-sha256');
  const signed = await signerFor(inbound, credentials).sign(message, { signingDate: now, signableHeaders: names });
  const set: string[] = [];
  for (const name of SIGNATURE_HEADERS) {
    request.headers.delete(name);
    const value = signed.headers[name.toLowerCase()];
    if (value === undefined) continue;
    request.headers.set(name, value);
    set.push(name);
  }
  return set;
}

/**
 * Re-signs a presigned URL in place: the workload's `X-Amz-*` signature parameters are removed
 * and replaced by a presignature of the same scope, signed headers, signing time and expiry,
 * made with `credentials`. The other parameters stay as received. S3's payload is
 * `UNSIGNED-PAYLOAD`, as for every S3 presigned URL; other services sign the empty body.
 * Returns the names of the parameters set.
 */
export async function resignQuery(request: ProxyRequest, inbound: QuerySignature, credentials: AwsCredentialIdentity): Promise<string[]> {
  const { message, names } = signable(request, inbound, toSignerQuery(inbound.kept));
  const unsignable = new Set<string>();
  if (inbound.service.startsWith('s3')) {
    // Read by the signer as the payload hash; neither signed nor moved into the query.
    message.headers['x-amz-content-sha256'] = UNSIGNED_PAYLOAD;
    unsignable.add('x-amz-content-sha256');
  }
  const presigned = await signerFor(inbound, credentials).presign(message, {
    signingDate: inbound.signedAt,
    expiresIn: inbound.expiresIn,
    signableHeaders: names,
    unsignableHeaders: unsignable,
    // The headers stay headers: the request is forwarded as the workload sent it.
    unhoistableHeaders: new Set(Object.keys(message.headers)),
  });
  const query = presigned.query ?? {};
  const added = Object.keys(query).filter((name) => SIGNATURE_PARAMS.has(name));
  const encoded = added.map((name) => `${escapeUri(name)}=${escapeUri(String(query[name]))}`);
  request.query = [...inbound.kept.map((p) => p.raw), ...encoded].join('&');
  return added;
}
