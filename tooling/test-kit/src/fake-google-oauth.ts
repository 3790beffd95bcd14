import { generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JSONWebKeySet, type JWTPayload } from 'jose';
import { HoldGate, listenFake } from './fake-server.js';

/** The RFC 7523 grant type Google's token endpoint takes service-account assertions with. */
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** The `iss` of the ID tokens, as Google writes it. */
export const GOOGLE_ID_TOKEN_ISSUER = 'https://accounts.google.com';
const TOKEN_PATH = '/token';
/** Google's token endpoint: assertions may name it as their `aud` (google-auth-library always does) besides the fake's own URL. */
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const JWKS_PATH = '/oauth2/v3/certs';

/** A service account the fake knows, and its keyfile (the JSON Google hands out). */
export interface FakeServiceAccount {
  readonly email: string;
  /** The keyfile JSON, `token_uri` pointing at the fake. Written by tests, never committed. */
  readonly keyfile: string;
  readonly publicKey: KeyObject;
}

/** An access token the fake issued. */
export interface IssuedAccessToken {
  readonly email: string;
  /** The assertion's `scope` claim. */
  readonly scope: string;
  /** The assertion's `sub` (domain-wide delegation), when present. */
  readonly subject: string | undefined;
  /** Expiry, ms since the epoch. */
  readonly expiresAt: number;
}

/** One token call, as received. */
export interface FakeGoogleTokenCall {
  readonly grantType: string;
  /** The assertion's `iss`, when it decoded. */
  readonly email: string | undefined;
  /** What was asked: an access token, or an ID token (`target_audience`). */
  readonly kind: 'access_token' | 'id_token' | 'unknown';
  /** The error code answered, when refused. */
  readonly error: string | undefined;
}

/** Options for {@link startFakeGoogleOAuth}. */
export interface FakeGoogleOAuthOptions {
  /** `expires_in` of access tokens and the lifetime of ID tokens; default 3600. */
  readonly expiresInSeconds?: number;
}

/** A running fake of `oauth2.googleapis.com/token`. */
export interface FakeGoogleOAuth {
  readonly url: string;
  /** The token endpoint: the `token_uri` of the keyfiles it creates, and the `aud` assertions must carry. */
  readonly tokenUri: string;
  /** Where the ID tokens' keys are served. */
  readonly jwksUri: string;
  readonly jwks: JSONWebKeySet;
  readonly calls: FakeGoogleTokenCall[];
  /** Generates an RSA key pair and a keyfile for `email`, and trusts its public key. */
  createServiceAccount(email: string): FakeServiceAccount;
  /** Forgets a service account: its assertions are refused (`invalid_grant`) from now on. */
  revoke(email: string): void;
  /** The access token's grant when the fake issued it and it has not expired, else undefined. */
  accessToken(token: string): IssuedAccessToken | undefined;
  /** Verifies an access token as a resource server would (for `startProtectedApi`); throws when it is not valid. */
  verifyAccessToken(token: string): Promise<JWTPayload>;
  /** Verifies an ID token against the JWKS for `audience`; throws when it is not valid. */
  verifyIdToken(token: string, audience: string): Promise<JWTPayload>;
  /** Answers every following token call with this HTTP status and OAuth error; undefined answers normally again. */
  failWith(failure: { readonly status: number; readonly error: string } | undefined): void;
  /** Holds every following token answer until the returned function is called (calls are recorded on arrival). */
  hold(): () => void;
  close(): Promise<void>;
}

/**
 * Starts a fake of Google's OAuth2 token endpoint on loopback. It takes the RFC 7523
 * jwt-bearer grant as `google-auth-library` and Go's `golang.org/x/oauth2/google` send it: the
 * assertion's RS256 signature is checked against the public key of the service account named by
 * its `iss`, `aud` must be the token endpoint (the fake's URL or Google's, as Google accepts), `iat`/`exp` must bracket now (at most an hour).
 * An assertion with a `scope` claim gets an opaque access token (`expires_in`, `token_type`);
 * one with `target_audience` gets an ID token signed with the fake's own RSA key (JWKS at
 * {@link FakeGoogleOAuth.jwksUri}). Refusals carry Google's `{error, error_description}` body.
 */
export async function startFakeGoogleOAuth(options: FakeGoogleOAuthOptions = {}): Promise<FakeGoogleOAuth> {
  const lifetime = options.expiresInSeconds ?? 3600;
  const accounts = new Map<string, KeyObject>();
  const issued = new Map<string, IssuedAccessToken>();
  const calls: FakeGoogleTokenCall[] = [];
  const gate = new HoldGate();
  let failure: { readonly status: number; readonly error: string } | undefined;
  const kid = randomUUID();
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwks: JSONWebKeySet = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] };
  const localJwks = createLocalJWKSet(jwks);
  let tokenUri = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === JWKS_PATH) return sendJson(res, 200, jwks);
    if (req.method !== 'POST' || path !== TOKEN_PATH) return sendJson(res, 404, { error: 'not_found' });
    const form = new URLSearchParams((await readBody(req)).toString('utf8'));
    const grantType = form.get('grant_type') ?? '';
    const refuse = (status: number, error: string, description: string, call: Partial<FakeGoogleTokenCall> = {}): void => {
      calls.push({ grantType, email: undefined, kind: 'unknown', ...call, error });
      sendJson(res, status, { error, error_description: description });
    };
    await gate.passed();
    if (failure !== undefined) return refuse(failure.status, failure.error, 'failure injected by the test');
    if (grantType !== JWT_BEARER) return refuse(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`);
    const verified = await verifyAssertion(form.get('assertion') ?? '', accounts, tokenUri);
    if (typeof verified === 'string') return refuse(400, 'invalid_grant', verified);
    const { email, claims } = verified;
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.target_audience === 'string' && claims.target_audience !== '') {
      const idToken = await new SignJWT({ email, email_verified: true, azp: email })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .setIssuer(GOOGLE_ID_TOKEN_ISSUER)
        .setSubject(email)
        .setAudience(claims.target_audience)
        .setIssuedAt(now)
        .setExpirationTime(now + lifetime)
        .sign(privateKey as CryptoKey);
      calls.push({ grantType, email, kind: 'id_token', error: undefined });
      return sendJson(res, 200, { id_token: idToken });
    }
    if (typeof claims.scope !== 'string' || claims.scope === '') {
      return refuse(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.', { email });
    }
    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    issued.set(token, { email, scope: claims.scope, subject: typeof claims.sub === 'string' ? claims.sub : undefined, expiresAt: Date.now() + lifetime * 1000 });
    calls.push({ grantType, email, kind: 'access_token', error: undefined });
    sendJson(res, 200, { access_token: token, expires_in: lifetime, token_type: 'Bearer' });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendJson(res, 500, { error: 'internal_failure', error_description: String(err) }));
  });
  const listening = await listenFake(server, '127.0.0.1');
  tokenUri = `${listening.url}${TOKEN_PATH}`;

  const accessToken = (token: string): IssuedAccessToken | undefined => {
    const grant = issued.get(token);
    return grant !== undefined && grant.expiresAt > Date.now() ? grant : undefined;
  };

  return {
    url: listening.url,
    tokenUri,
    jwksUri: `${listening.url}${JWKS_PATH}`,
    jwks,
    calls,
    createServiceAccount(email) {
      const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      accounts.set(email, pair.publicKey);
      const keyfile = JSON.stringify({
        type: 'service_account',
        project_id: 'fake-project',
        private_key_id: randomBytes(20).toString('hex'),
        private_key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        client_email: email,
        client_id: String(100_000_000_000_000_000_000n + BigInt(accounts.size)),
        auth_uri: 'https://accounts.google.com/o/oauth2/auth',
        token_uri: tokenUri,
        auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
        universe_domain: 'googleapis.com',
      });
      return { email, keyfile, publicKey: pair.publicKey };
    },
    revoke(email) {
      accounts.delete(email);
    },
    accessToken,
    async verifyAccessToken(token) {
      const grant = accessToken(token);
      if (grant === undefined) throw new Error('not an access token this fake issued, or expired');
      return { email: grant.email, scope: grant.scope, ...(grant.subject === undefined ? {} : { sub: grant.subject }), exp: Math.floor(grant.expiresAt / 1000) };
    },
    async verifyIdToken(token, audience) {
      const { payload } = await jwtVerify(token, localJwks, { issuer: GOOGLE_ID_TOKEN_ISSUER, audience, algorithms: ['RS256'] });
      return payload;
    },
    failWith(next) {
      failure = next;
    },
    hold: () => gate.hold(),
    close: () => listening.close(),
  };
}

/** Checks a service-account assertion; returns the account and claims, or why it is refused. */
async function verifyAssertion(assertion: string, accounts: ReadonlyMap<string, KeyObject>, tokenUri: string): Promise<{ email: string; claims: JWTPayload } | string> {
  const parts = assertion.split('.');
  if (parts.length !== 3) return 'Invalid JWT: not a JWS compact serialization';
  let unverified: JWTPayload;
  try {
    unverified = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as JWTPayload;
  } catch {
    return 'Invalid JWT: payload is not JSON';
  }
  const email = unverified.iss;
  const key = typeof email === 'string' ? accounts.get(email) : undefined;
  if (email === undefined || key === undefined) return 'Invalid JWT Signature.';
  try {
    const { payload } = await jwtVerify(assertion, key, { issuer: email, audience: [tokenUri, GOOGLE_TOKEN_URL], algorithms: ['RS256'], maxTokenAge: '1h', clockTolerance: 5 });
    if (payload.exp === undefined || payload.iat === undefined || payload.exp - payload.iat > 3600) return 'Invalid JWT: Token must be a short-lived token (60 minutes)';
    return { email, claims: payload };
  } catch (err) {
    return `Invalid JWT: ${(err as Error).message}`;
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(value));
}
