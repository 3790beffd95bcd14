import { createVerify, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { Events, OAuth2Server, type MutableResponse, type MutableToken, type TokenRequestIncomingMessage } from 'oauth2-mock-server';

/** What the jwt-bearer grant accepts: assertions signed by this key, for this audience. */
export interface AssertionPolicy {
  /** The public key of the client's RSA key pair. */
  readonly publicKey: KeyObject;
  /** The `aud` the assertion must carry. */
  readonly audience: string;
  /** The `iss` it must carry. */
  readonly issuer: string;
  /** The `kid` header it must carry, when set. */
  readonly kid?: string;
}

/** One token endpoint call, as received. */
export interface MockTokenCall {
  readonly grantType: string;
  /** The form body (credentials included: tests only). */
  readonly body: Readonly<Record<string, unknown>>;
  /** The request header fields, names lowercase. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The error answered, when the call was refused. */
  readonly error: string | undefined;
}

/** Options for {@link startOAuthMockServer}; every map may be changed while the server runs. */
export interface OAuthMockServerOptions {
  /** Clients and their secrets (`client_secret_post`); the password grant checks them. */
  readonly clients?: Map<string, string>;
  /** Users and their passwords for the password grant. */
  readonly users?: Map<string, string>;
  /** The jwt-bearer grant's checks; without it every jwt-bearer call is refused. */
  readonly assertions?: AssertionPolicy;
  /** Headers every token call must carry (an API key), name lowercase. */
  readonly requiredHeaders?: Map<string, string>;
  /** `expires_in` of the tokens; default 3600. */
  readonly expiresInSeconds?: number;
}

/** A running oauth2-mock-server with credential checks. */
export interface OAuthMockServer {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  /** The `aud` of every access token it issues. */
  readonly resource: string;
  readonly calls: MockTokenCall[];
  /** Verifies an access token as a resource server does (JWKS signature, issuer, audience, expiry). */
  verify(token: string): Promise<JWTPayload>;
  close(): Promise<void>;
}

/**
 * Starts [oauth2-mock-server](https://github.com/axa-group/oauth2-mock-server) on loopback for
 * the grants oidc-provider lacks (password, RFC 7523 jwt-bearer). Its tokens are real JWTs
 * signed with a fresh RSA key; the mock issues them to anyone, so its token hook adds the
 * checks a real server makes: the client secret and the user's password for the password
 * grant, the assertion's signature, `iss`, `aud`, expiry and `kid` for jwt-bearer, and the
 * required headers for every call. A refused call gets the RFC 6749 error body.
 */
export async function startOAuthMockServer(options: OAuthMockServerOptions = {}): Promise<OAuthMockServer> {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  await server.start(0, '127.0.0.1');
  const issuer = server.issuer.url!;
  const resource = `${issuer}/api`;
  const calls: MockTokenCall[] = [];

  server.service.on(Events.BeforeTokenSigning, (token: MutableToken, req: TokenRequestIncomingMessage) => {
    token.payload.aud = resource;
    const body = req.body as unknown as Record<string, unknown>;
    if (typeof body.client_id === 'string') token.payload.client_id = body.client_id;
    if (options.expiresInSeconds !== undefined) token.payload.exp = token.payload.iat + options.expiresInSeconds;
  });
  server.service.on(Events.BeforeResponse, (response: MutableResponse, req: TokenRequestIncomingMessage) => {
    const body = req.body as unknown as Record<string, unknown>;
    const grantType = String(body.grant_type);
    const refusal = refuse(options, req, body);
    if (refusal !== undefined) {
      response.statusCode = refusal.status;
      response.body = { error: refusal.error, error_description: refusal.description };
    } else if (options.expiresInSeconds !== undefined && response.body !== '') {
      response.body.expires_in = options.expiresInSeconds;
    }
    calls.push({ grantType, body: { ...body }, headers: { ...req.headers }, error: refusal?.error });
  });

  const keySet = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    jwksUri: `${issuer}/jwks`,
    resource,
    calls,
    async verify(token) {
      const { payload } = await jwtVerify(token, keySet, { issuer, audience: resource });
      return payload;
    },
    close: () => server.stop(),
  };
}

interface Refusal {
  readonly status: number;
  readonly error: string;
  readonly description: string;
}

/** The refusal a real server would answer, or undefined when the call is in order. */
function refuse(options: OAuthMockServerOptions, req: TokenRequestIncomingMessage, body: Record<string, unknown>): Refusal | undefined {
  for (const [name, value] of options.requiredHeaders ?? []) {
    if (req.headers[name] !== value) return { status: 401, error: 'invalid_client', description: `header ${name} missing or wrong` };
  }
  switch (body.grant_type) {
    case 'password': {
      const secret = options.clients?.get(String(body.client_id));
      if (secret === undefined || (body.client_secret !== undefined && body.client_secret !== secret) || (body.client_secret === undefined && secret !== '')) {
        return { status: 401, error: 'invalid_client', description: 'client authentication failed' };
      }
      const password = options.users?.get(String(body.username));
      if (password === undefined || password !== body.password) return { status: 400, error: 'invalid_grant', description: 'wrong username or password' };
      return undefined;
    }
    case 'urn:ietf:params:oauth:grant-type:jwt-bearer':
      return checkAssertion(options.assertions, body.assertion);
    default:
      return undefined;
  }
}

/** The jwt-bearer checks (RFC 7523 §3); the mock's hooks are synchronous, so they use node:crypto. */
function checkAssertion(policy: AssertionPolicy | undefined, assertion: unknown): Refusal | undefined {
  const invalid = (description: string): Refusal => ({ status: 400, error: 'invalid_grant', description });
  if (policy === undefined) return invalid('jwt-bearer is not enabled');
  if (typeof assertion !== 'string') return invalid('assertion missing');
  const result = verifyAssertionSync(assertion, policy);
  return result === undefined ? undefined : invalid(result);
}

/** Verifies the RS256 signature and the claims; returns why the assertion is refused, if it is. */
function verifyAssertionSync(assertion: string, policy: AssertionPolicy): string | undefined {
  const parts = assertion.split('.');
  if (parts.length !== 3) return 'assertion is not a JWS';
  const header = decodeProtectedHeader(assertion);
  if (header.alg !== 'RS256') return `unexpected alg ${String(header.alg)}`;
  if (policy.kid !== undefined && header.kid !== policy.kid) return 'unknown kid';
  const verifier = createVerify('RSA-SHA256');
  verifier.update(`${parts[0]}.${parts[1]}`);
  if (!verifier.verify(policy.publicKey, Buffer.from(parts[2]!, 'base64url'))) return 'bad signature';
  const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as JWTPayload;
  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== policy.issuer) return 'unexpected iss';
  if (claims.aud !== policy.audience) return 'unexpected aud';
  if (typeof claims.exp !== 'number' || claims.exp <= now) return 'expired assertion';
  if (typeof claims.sub !== 'string') return 'sub missing';
  return undefined;
}
