/**
 * `-config s3://bucket/key`: the config file read from Amazon S3 (GetObject) with the AWS SDK's
 * default credential chain and region settings, as iron-proxy does. Loaded only for such URLs.
 */
import { GetObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { ConfigError, ErrorCodes } from '@proxy/core';

/** How long the whole fetch (retries included) may take, as in iron-proxy. */
const FETCH_TIMEOUT_MS = 30_000;

/** Bucket and key of an `s3://bucket/key` URL; throws a config error naming the URL for any other form. */
export function parseS3ConfigUrl(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (m === null) throw readError(url, 'expected the form s3://bucket/key');
  return { bucket: m[1]!, key: m[2]! };
}

/**
 * Fetches the config text at `url`. The SDK reads its settings from the process environment: credentials
 * (`AWS_ACCESS_KEY_ID`..., profiles, web identity, container and instance roles), `AWS_REGION`
 * and the endpoint (`AWS_ENDPOINT_URL_S3`). Every failure (no such bucket or key, access
 * denied, no credentials or region, unreachable, timeout) is a `PROXY_ERR_CONFIG_READ` naming
 * the URL.
 */
export async function fetchS3Config(url: string): Promise<string> {
  const { bucket, key } = parseS3ConfigUrl(url);
  const client = new S3Client(regionOption(process.env));
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (out.Body === undefined) throw readError(url, 'the object has no body');
    return await out.Body.transformToString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw readError(url, describeFailure(err));
  } finally {
    client.destroy();
  }
}

/** The SDK reads `AWS_REGION` itself; Go's SDK (iron-proxy's) also takes `AWS_DEFAULT_REGION`, so it is honoured too. */
function regionOption(env: Readonly<Record<string, string | undefined>>): { region?: string } {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  return region ? { region } : {};
}

/** A one-line reason: S3's error code and message, or the client-side failure. */
function describeFailure(err: unknown): string {
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode;
    const hint = err.name === 'AccessDenied' || err.name === 'InvalidAccessKeyId' || err.name === 'SignatureDoesNotMatch' ? ' (check the credentials and s3:GetObject permission)' : '';
    return `${err.name}${status === undefined ? '' : ` (HTTP ${status})`}: ${err.message}${hint}`;
  }
  const e = err as Error & { code?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${FETCH_TIMEOUT_MS / 1000}s`;
  const cause = (e as { cause?: { code?: string } })?.cause?.code ?? e?.code;
  return `${e?.message ?? String(err)}${cause === undefined ? '' : ` (${cause})`}`;
}

function readError(url: string, reason: string): ConfigError {
  return new ConfigError([{ file: url, path: '', message: `cannot read the config from S3: ${reason}` }], ErrorCodes.CONFIG_READ);
}
