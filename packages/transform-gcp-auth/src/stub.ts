import { respond, type ProxyRequest, type RespondDecision } from '@proxy/core';

/** The placeholder access token of the stub answers: meaningless, replaced on the way out. */
export const STUB_ACCESS_TOKEN = 'iron-proxy-stub-token';

/** The `stubbed` annotation of a stubbed token request. */
export const STUBBED_TOKEN_ENDPOINT = 'oauth2_token_endpoint';

/** The body of the stub answer, byte for byte as iron-proxy sends it. */
export const STUB_BODY = JSON.stringify({ access_token: STUB_ACCESS_TOKEN, expires_in: 3600, token_type: 'Bearer' });

/** Google's OAuth2 token endpoint host and path. */
export const GOOGLE_TOKEN_HOST = 'oauth2.googleapis.com';
export const GOOGLE_TOKEN_PATH = '/token';

/** The names the GCE/GKE metadata server is reached at. */
export const METADATA_HOSTS: ReadonlySet<string> = new Set(['metadata.google.internal', '169.254.169.254']);

/** The RFC 7523 grant type of service-account assertions. */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Largest token request body inspected for an ID-token request; a larger one is answered as an access-token request. */
export const MAX_TOKEN_REQUEST_BYTES = 1024 * 1024;

/** True for a request to Google's token endpoint (any port, any method). */
export function isGoogleTokenRequest(request: ProxyRequest): boolean {
  return request.host === GOOGLE_TOKEN_HOST && request.path === GOOGLE_TOKEN_PATH;
}

/** True for a request to the metadata server under `/computeMetadata/v1/instance/service-accounts/<account>/<leaf>`. */
export function isMetadataAccountRequest(request: ProxyRequest, leaf: 'token' | 'identity'): boolean {
  if (!METADATA_HOSTS.has(request.host)) return false;
  const prefix = '/computeMetadata/v1/instance/service-accounts/';
  if (!request.path.startsWith(prefix)) return false;
  const rest = request.path.slice(prefix.length).split('/');
  return rest.length === 2 && rest[0] !== '' && rest[1] === leaf;
}

/**
 * The `target_audience` of a token request that asks for an ID token: a jwt-bearer grant whose
 * assertion carries the claim (read without verifying it: the proxy only routes on it). Reads
 * the request's body (up to {@link MAX_TOKEN_REQUEST_BYTES}), which stays buffered and is
 * answered or forwarded as it came. Undefined for anything else, a body it cannot read
 * included.
 */
export async function idTokenAudience(request: ProxyRequest): Promise<string | undefined> {
  const body = request.body;
  if (!body.present) return undefined;
  if (body.declaredLength !== undefined && body.declaredLength > MAX_TOKEN_REQUEST_BYTES) return undefined;
  let bytes: Buffer;
  try {
    bytes = await body.read();
  } catch {
    return undefined;
  }
  if (bytes.length > MAX_TOKEN_REQUEST_BYTES) return undefined;
  const form = new URLSearchParams(bytes.toString('utf8'));
  if (form.get('grant_type') !== JWT_BEARER_GRANT_TYPE) return undefined;
  const payload = form.get('assertion')?.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    return typeof claims.target_audience === 'string' && claims.target_audience !== '' ? claims.target_audience : undefined;
  } catch {
    return undefined;
  }
}

/** The stub answer to a workload's access-token request; the metadata server's carries its `Metadata-Flavor` header, which clients check. */
export function accessTokenStub(metadata: boolean): RespondDecision {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (metadata) headers['metadata-flavor'] = 'Google';
  return respond(200, STUB_BODY, headers, STUBBED_TOKEN_ENDPOINT);
}
