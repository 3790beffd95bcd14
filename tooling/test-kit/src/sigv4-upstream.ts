import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { listenFake } from './fake-server.js';
import { checkSigV4, type SigV4Check, type SigV4Credentials } from './sigv4-check.js';

/** Options for {@link startSigV4Upstream}. */
export interface SigV4UpstreamOptions {
  /** The only credentials accepted: every request's signature is recomputed with them. */
  readonly credentials: SigV4Credentials;
  /** Serve HTTPS with this certificate (e.g. a leaf of {@link createTestPki}); plain HTTP without. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Interface to bind; default `127.0.0.1`. */
  readonly host?: string;
  /**
   * Where verified requests of services other than S3 go: service name (as in the credential
   * scope) to the base URL of a fake that answers them, e.g. `{ sts: fakeSts.url,
   * secretsmanager: fakeSecrets.url }`. The request is passed on as received, signature included.
   */
  readonly backends?: Readonly<Record<string, string>>;
}

/** One request the upstream received, verified or not. */
export interface SigV4UpstreamRequest extends SigV4Check {
  readonly method: string;
  /** Path and query, as received. */
  readonly url: string;
  /** The request headers, as received (lowercase names). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Bytes of body received (before aws-chunked decoding). */
  readonly bodyLength: number;
}

/** A running SigV4-verifying upstream. */
export interface SigV4Upstream {
  /** Base URL, `https://127.0.0.1:<port>` (or `http://`). */
  readonly url: string;
  readonly port: number;
  /** Every request received, in order. */
  readonly requests: SigV4UpstreamRequest[];
  /** Every access key id any request was signed with, in order of arrival, each once. */
  accessKeyIds(): string[];
  /** The S3 objects stored, by `bucket/key`. */
  readonly objects: Map<string, Buffer>;
  close(): Promise<void>;
}

/**
 * Starts an AWS endpoint that accepts only requests signed with `credentials`: each request's
 * SigV4 signature (header or presigned URL) is recomputed with the AWS SDK's signer
 * ({@link checkSigV4}); a bad one gets AWS's 403 error (`InvalidAccessKeyId`,
 * `SignatureDoesNotMatch`, `RequestExpired`, ...), a JSON body for JSON-protocol clients and
 * XML otherwise. A verified S3 request (path-style) is served by an in-memory object store:
 * `PUT /bucket/key` (a plain body, or `aws-chunked` with `STREAMING-UNSIGNED-PAYLOAD-TRAILER`)
 * and `GET /bucket/key`. Other services go to their {@link SigV4UpstreamOptions.backends}.
 */
export async function startSigV4Upstream(options: SigV4UpstreamOptions): Promise<SigV4Upstream> {
  const requests: SigV4UpstreamRequest[] = [];
  const objects = new Map<string, Buffer>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const received = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body };
    const check = await checkSigV4(received, options.credentials);
    requests.push({ ...check, method: received.method, url: received.url, headers: { ...req.headers }, bodyLength: body.length });
    if (check.error !== undefined) return sendError(res, req, 403, check.error, `signature check failed: ${check.error}`);
    if (check.service?.startsWith('s3')) return serveS3(req, res, body, objects);
    const backend = check.service === undefined ? undefined : options.backends?.[check.service];
    if (backend === undefined) return sendError(res, req, 400, 'UnknownService', `no backend for service ${check.service}`);
    return pass(req, res, body, backend);
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, req, 500, 'InternalError', err instanceof Error ? err.message : String(err));
      else res.destroy();
    });
  };
  const server: Server = options.tls === undefined ? createHttpServer(listener) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener);
  const listening = await listenFake(server, options.host ?? '127.0.0.1');
  const url = options.tls === undefined ? listening.url : listening.url.replace(/^http:/, 'https:');
  return {
    url,
    port: Number(new URL(url).port),
    requests,
    objects,
    accessKeyIds: () => [...new Set(requests.flatMap((r) => (r.accessKeyId === undefined ? [] : [r.accessKeyId])))],
    close: () => listening.close(),
  };
}

/** The small part of S3 the SDK's PutObject and GetObject need. */
function serveS3(req: IncomingMessage, res: ServerResponse, body: Buffer, objects: Map<string, Buffer>): void {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  const key = decodeURIComponent(path.slice(1));
  if (!/^[^/]+\/.+/.test(key)) return sendError(res, req, 501, 'NotImplemented', 'only object PUT and GET are served');
  if (req.method === 'PUT') {
    const data = /aws-chunked/.test(String(req.headers['content-encoding'] ?? '')) ? decodeAwsChunked(body) : body;
    const declared = req.headers['x-amz-decoded-content-length'];
    if (declared !== undefined && Number(declared) !== data.length) return sendError(res, req, 400, 'IncompleteBody', 'decoded length differs');
    objects.set(key, data);
    res.writeHead(200, { ETag: etag(data), 'Content-Length': '0' }).end();
    return;
  }
  if (req.method === 'GET') {
    const data = objects.get(key);
    if (data === undefined) return sendError(res, req, 404, 'NoSuchKey', 'The specified key does not exist.');
    res.writeHead(200, { ETag: etag(data), 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) }).end(data);
    return;
  }
  sendError(res, req, 501, 'NotImplemented', `${req.method} is not served`);
}

/** Decodes an `aws-chunked` body: `<hex size>[;chunk-signature=...]\r\n<data>\r\n`..., then `0`, trailers. */
function decodeAwsChunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) throw new Error('aws-chunked body without a final chunk');
    const size = parseInt(body.subarray(at, eol).toString('latin1').split(';', 1)[0]!, 16);
    if (!Number.isFinite(size)) throw new Error('aws-chunked body with a bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Passes a verified request to a backend fake and relays its answer. */
async function pass(req: IncomingMessage, res: ServerResponse, body: Buffer, backend: string): Promise<void> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || ['host', 'connection', 'content-length', 'transfer-encoding'].includes(name)) continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const answer = await fetch(new URL(req.url ?? '/', backend), {
    method: req.method ?? 'GET',
    headers,
    ...(body.length > 0 ? { body } : {}),
  });
  const data = Buffer.from(await answer.arrayBuffer());
  res.writeHead(answer.status, { 'Content-Type': answer.headers.get('content-type') ?? 'application/octet-stream', 'Content-Length': String(data.length) }).end(data);
}

/** AWS's error answer: JSON for JSON-protocol clients, S3/query-protocol XML otherwise. */
function sendError(res: ServerResponse, req: IncomingMessage, status: number, code: string, message: string): void {
  const json = /json/.test(String(req.headers['content-type'] ?? ''));
  const body = json
    ? JSON.stringify({ __type: code, message })
    : `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>test</RequestId></ErrorResponse>`;
  res.writeHead(status, { 'Content-Type': json ? 'application/x-amz-json-1.1' : 'application/xml', 'Content-Length': String(Buffer.byteLength(body)) }).end(body);
}

function etag(data: Buffer): string {
  return `"${createHash('md5').update(data).digest('hex')}"`;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
