import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenFake } from './fake-server.js';
import { checkSigV4 } from './sigv4-check.js';
import { parseSigV4Authorization } from './sigv4.js';

/** One GetObject the fake received (answered or refused). */
export interface FakeS3Call {
  readonly bucket: string;
  readonly key: string;
  /** The access key of the SigV4 `Authorization` header. */
  readonly accessKeyId: string;
  /** The region of the SigV4 credential scope. */
  readonly region: string;
}

/** Options for {@link startFakeS3}. */
export interface FakeS3Options {
  /** Interface to bind; default `127.0.0.1`. */
  readonly host?: string;
  /**
   * When given, only these credentials are accepted and every signature is verified
   * (`InvalidAccessKeyId` for another key, `SignatureDoesNotMatch` for a bad signature, both
   * 403). Without it any access key is accepted and only the presence of a SigV4 header is
   * checked.
   */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** A running fake of Amazon S3's GetObject. */
export interface FakeS3 {
  /** Base URL: the value for `AWS_ENDPOINT_URL_S3` (path-style addressing: `/<bucket>/<key>`). */
  readonly url: string;
  /** Every GetObject received, in order, refused ones included. */
  readonly calls: FakeS3Call[];
  /** Creates or overwrites an object (creating its bucket). */
  putObject(bucket: string, key: string, body: string | Buffer): void;
  /** Makes every GetObject on `bucket` fail with 403 `AccessDenied` (as a bucket policy denying the caller does). */
  denyBucket(bucket: string): void;
  /** Closes the listener and every open connection. */
  close(): Promise<void>;
}

/** An S3 REST error: HTTP status, `Code` and `Message` of the XML body. */
interface S3Error {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/**
 * Starts a local Amazon S3 that serves GetObject over the REST protocol with path-style
 * addressing: a SigV4-signed `GET /<bucket>/<key>` answered with the object's bytes, its
 * `ETag`, `Content-Length` and `Last-Modified`, and errors as S3's XML
 * `<Error><Code>…</Code><Message>…</Message></Error>` (`NoSuchBucket`, `NoSuchKey`: 404;
 * `AccessDenied`: 403). The real `@aws-sdk/client-s3` talks to it through
 * `AWS_ENDPOINT_URL_S3` (or an `endpoint` option; an IP-address endpoint selects path style).
 */
export async function startFakeS3(options: FakeS3Options = {}): Promise<FakeS3> {
  const host = options.host ?? '127.0.0.1';
  const calls: FakeS3Call[] = [];
  const buckets = new Map<string, Map<string, { body: Buffer; etag: string; modified: Date }>>();
  const denied = new Set<string>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const [rawPath = '/'] = (req.url ?? '/').split('?', 1);
    const slash = rawPath.indexOf('/', 1);
    const bucket = decodeURIComponent(slash === -1 ? rawPath.slice(1) : rawPath.slice(1, slash));
    const key = slash === -1 ? '' : decodeURIComponent(rawPath.slice(slash + 1));
    const resource = `/${bucket}/${key}`;
    if (req.method !== 'GET' || bucket === '' || key === '') {
      return sendError(res, { status: 405, code: 'MethodNotAllowed', message: 'only GetObject (GET /<bucket>/<key>) is served' }, resource);
    }
    const auth = parseSigV4Authorization(req.headers.authorization);
    if (auth === undefined) return sendError(res, { status: 403, code: 'AccessDenied', message: 'Access Denied' }, resource);
    calls.push({ bucket, key, accessKeyId: auth.accessKeyId, region: auth.region });
    if (options.credentials !== undefined) {
      if (auth.accessKeyId !== options.credentials.accessKeyId) {
        return sendError(res, { status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' }, resource);
      }
      if ((await checkSigV4({ method: 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.alloc(0) }, options.credentials)).error !== undefined) {
        return sendError(res, { status: 403, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided.' }, resource);
      }
    }
    const objects = buckets.get(bucket);
    if (objects === undefined) return sendError(res, { status: 404, code: 'NoSuchBucket', message: 'The specified bucket does not exist' }, resource);
    if (denied.has(bucket)) return sendError(res, { status: 403, code: 'AccessDenied', message: 'Access Denied' }, resource);
    const object = objects.get(key);
    if (object === undefined) return sendError(res, { status: 404, code: 'NoSuchKey', message: 'The specified key does not exist.' }, resource);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': object.body.length,
      etag: object.etag,
      'last-modified': object.modified.toUTCString(),
      'x-amz-request-id': requestId(),
    });
    res.end(object.body);
  };

  const server: Server = createServer((req, res) => {
    // GetObject has no body; drain anything sent so the connection stays usable.
    req.resume();
    req.on('end', () => void handle(req, res));
  });
  const listening = await listenFake(server, host);

  return {
    url: listening.url,
    calls,
    putObject(bucket, key, body) {
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
      let objects = buckets.get(bucket);
      if (objects === undefined) buckets.set(bucket, (objects = new Map()));
      objects.set(key, { body: bytes, etag: `"${createHash('md5').update(bytes).digest('hex')}"`, modified: new Date() });
    },
    denyBucket(bucket) {
      denied.add(bucket);
    },
    close: () => listening.close(),
  };
}

function requestId(): string {
  return randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase();
}

function sendError(res: ServerResponse, error: S3Error, resource: string): void {
  const id = requestId();
  const xml =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${escapeXml(error.message)}</Message>` +
    `<Resource>${escapeXml(resource)}</Resource><RequestId>${id}</RequestId></Error>`;
  res.writeHead(error.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml), 'x-amz-request-id': id });
  res.end(xml);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
