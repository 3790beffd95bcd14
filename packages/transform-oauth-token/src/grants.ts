import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { JWT_BEARER_GRANT_TYPE, type CredentialField, type Grant } from './config.js';
import { MintError } from './mint-error.js';
import { grantFailure } from './oauth-errors.js';
import type { TokenFetch } from './token-endpoint.js';

/** Lifetime of a jwt_bearer assertion (as golang.org/x/oauth2/jwt signs them). */
const ASSERTION_LIFETIME_SECONDS = 3600;

/** A token the endpoint issued. */
export interface MintedToken {
  readonly accessToken: string;
  /** When the token expires (ms since the epoch); undefined when the endpoint gave no `expires_in`. */
  readonly expiresAt: number | undefined;
  /** When it was minted (ms). */
  readonly mintedAt: number;
  /** A new refresh token the endpoint issued with it (refresh token rotation). */
  readonly refreshToken: string | undefined;
}

/** Everything one grant request needs. */
export interface GrantRequest {
  readonly grant: Grant;
  readonly endpoint: URL;
  /** The current credential values, by field. */
  readonly credentials: Readonly<Partial<Record<CredentialField, string>>>;
  readonly scopes: readonly string[];
  readonly audience: string | undefined;
  /** Extra headers on the POST. */
  readonly headers: Readonly<Record<string, string>>;
  readonly fetch: TokenFetch;
  /** Ends the request: the transform's lifetime and a timeout, never a proxied request's. */
  readonly signal: AbortSignal;
  /** Now, in ms. */
  readonly now: number;
  /** Called with every credential the request creates on the way (a signed assertion), to keep it out of logs. */
  readonly onCredential: (value: string, what: string) => void;
}

/**
 * Posts one grant to the token endpoint with oauth4webapi and returns the token. Client
 * credentials go in the form body (`client_secret_post`), as iron-proxy sends them; a client
 * without a secret sends its `client_id` alone. Throws a {@link MintError}.
 */
export async function requestToken(request: GrantRequest): Promise<MintedToken> {
  const { endpoint, credentials } = request;
  const as: oauth.AuthorizationServer = { issuer: endpoint.origin, token_endpoint: endpoint.href };
  const options = {
    [oauth.customFetch]: request.fetch,
    [oauth.allowInsecureRequests]: endpoint.protocol === 'http:',
    headers: { ...request.headers },
    signal: request.signal,
  };
  const parameters = new URLSearchParams();
  if (request.grant !== 'jwt_bearer') {
    if (request.scopes.length > 0) parameters.set('scope', request.scopes.join(' '));
    if (request.audience !== undefined) parameters.set('audience', request.audience);
  }
  const clientSecret = credentials.client_secret;
  const clientAuth = clientSecret === undefined ? oauth.None() : oauth.ClientSecretPost(clientSecret);

  let body: oauth.TokenEndpointResponse;
  try {
    switch (request.grant) {
      case 'client_credentials': {
        const client = { client_id: required(credentials, 'client_id') };
        const response = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, parameters, options);
        body = await oauth.processClientCredentialsResponse(as, client, response);
        break;
      }
      case 'refresh_token': {
        const client = { client_id: required(credentials, 'client_id') };
        const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, required(credentials, 'refresh_token'), {
          ...options,
          additionalParameters: parameters,
        });
        body = await oauth.processRefreshTokenResponse(as, client, response);
        break;
      }
      case 'password': {
        const client = { client_id: required(credentials, 'client_id') };
        parameters.set('username', required(credentials, 'username'));
        parameters.set('password', required(credentials, 'password'));
        const response = await oauth.genericTokenEndpointRequest(as, client, clientAuth, 'password', parameters, options);
        body = await oauth.processGenericTokenEndpointResponse(as, client, response);
        break;
      }
      case 'jwt_bearer': {
        const assertion = await signAssertion(request);
        request.onCredential(assertion, 'jwt_bearer assertion');
        // The assertion is the client's whole authentication (RFC 7523 §2.1): nothing else is sent.
        const client = { client_id: required(credentials, 'issuer') };
        const response = await oauth.genericTokenEndpointRequest(as, client, noClientAuthentication, JWT_BEARER_GRANT_TYPE, { assertion }, options);
        body = await oauth.processGenericTokenEndpointResponse(as, client, response);
        break;
      }
    }
  } catch (err) {
    throw grantFailure(err);
  }
  return {
    accessToken: body.access_token,
    expiresAt: body.expires_in === undefined ? undefined : request.now + body.expires_in * 1000,
    mintedAt: request.now,
    refreshToken: body.refresh_token,
  };
}

/** Client authentication that adds nothing to the request. */
const noClientAuthentication: oauth.ClientAuth = () => undefined;

/**
 * The RFC 7523 assertion: RS256 over `iss` (issuer), `sub` (subject), `aud` (audience),
 * `iat`, `exp` (an hour later) and `scope` (the scopes, space-separated, when there are any),
 * with the `kid` header when `private_key_id` is set.
 */
async function signAssertion(request: GrantRequest): Promise<string> {
  const { credentials } = request;
  const key = rsaPrivateKey(required(credentials, 'private_key'));
  const iat = Math.floor(request.now / 1000);
  const claims = request.scopes.length > 0 ? { scope: request.scopes.join(' ') } : {};
  const kid = credentials.private_key_id;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(kid === undefined ? {} : { kid }) })
    .setIssuer(required(credentials, 'issuer'))
    .setSubject(required(credentials, 'subject'))
    .setAudience(requiredAudience(request.audience))
    .setIssuedAt(iat)
    .setExpirationTime(iat + ASSERTION_LIFETIME_SECONDS)
    .sign(key);
}

/** Loads a PEM RSA private key (PKCS#1 or PKCS#8). The error never quotes the key. */
function rsaPrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new MintError('mint_failed', 'private_key is not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new MintError('mint_failed', `private_key must be an RSA key (got ${key.asymmetricKeyType ?? 'unknown'})`);
  }
  return key;
}

function requiredAudience(audience: string | undefined): string {
  // The schema requires `audience` for jwt_bearer; this guards direct callers.
  if (audience === undefined) throw new MintError('mint_failed', 'audience is not configured');
  return audience;
}

function required(credentials: GrantRequest['credentials'], field: CredentialField): string {
  const value = credentials[field];
  // The schema requires every field a grant uses; this guards direct callers.
  if (value === undefined) throw new MintError('mint_failed', `${field} is not configured`);
  return value;
}
