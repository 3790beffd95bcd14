import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose';
import { HoldGate, listenFake } from './fake-server.js';
import { parseSigV4Authorization } from './sigv4.js';
import { checkSigV4 } from './sigv4-check.js';

/** The signing algorithms `GetWebIdentityToken` offers. */
export type FakeStsSigningAlgorithm = 'RS256' | 'ES384';

/**
 * How the fake fails the `GetWebIdentityToken` calls it receives: an STS error response
 * (`AccessDenied`, 403; `OutboundWebIdentityFederationDisabled`, 403 with the code
 * `OutboundWebIdentityFederationDisabledException`), `drop`, a connection destroyed without
 * an answer, or `no-expiration`, a well-formed 200 answer with a valid token but no
 * `Expiration` element.
 */
export type FakeStsFailure = 'AccessDenied' | 'OutboundWebIdentityFederationDisabled' | 'drop' | 'no-expiration';

/** One `GetWebIdentityToken` request the fake received (answered or failed). */
export interface FakeStsCall {
  /** `Audience.member.N`, in order. */
  readonly audience: string[];
  readonly signingAlgorithm: string;
  /** `DurationSeconds`, when sent. */
  readonly durationSeconds: number | undefined;
  /** The access key of the SigV4 `Authorization` header. */
  readonly accessKeyId: string;
}

/** Options for {@link startFakeSts}. */
export interface FakeStsOptions {
  /** Interface to bind; default `127.0.0.1`. */
  readonly host?: string;
  /**
   * When given, only these credentials are accepted and every signature is verified
   * (`InvalidClientTokenId` for another key, `SignatureDoesNotMatch` for a bad signature).
   * Without it any access key is accepted and only the presence of a SigV4 header is checked.
   */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Time source (ms since the epoch) for `iat`, `exp` and `Expiration`; default `Date.now`. */
  readonly clock?: () => number;
  /** The `sub` claim; default `arn:aws:iam::123456789012:role/fake-sts-workload`. */
  readonly subject?: string;
}

/** A running fake AWS STS. */
export interface FakeSts {
  /** Base URL, e.g. `http://127.0.0.1:40123`: the value for `AWS_ENDPOINT_URL_STS`. */
  readonly url: string;
  /** The `iss` of the tokens it issues (its own URL); `<issuer>/.well-known/openid-configuration` is served. */
  readonly issuer: string;
  /** The public keys it signs with (one RSA key for RS256, one P-384 key for ES384). */
  readonly jwks: JSONWebKeySet;
  /** Every `GetWebIdentityToken` request received, in order, failed ones included. */
  readonly calls: FakeStsCall[];
  /** Fails every following call the given way; `undefined` answers normally again. */
  failWith(mode: FakeStsFailure | undefined): void;
  /**
   * Holds the answers to every following call until the returned function is called (the
   * call is recorded in `calls` on arrival). Lets a test observe what happens while STS is slow.
   */
  hold(): () => void;
  /** Closes the listener and every open connection. */
  close(): Promise<void>;
}

const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';
const API_VERSION = '2011-06-15';
const DEFAULT_SUBJECT = 'arn:aws:iam::123456789012:role/fake-sts-workload';
/** STS's own default when `DurationSeconds` is absent. */
const DEFAULT_DURATION_SECONDS = 300;
const MIN_DURATION_SECONDS = 60;
const MAX_DURATION_SECONDS = 3600;
const JWKS_PATH = '/.well-known/jwks.json';

interface SigningKey {
  readonly alg: FakeStsSigningAlgorithm;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

/** An STS error answer: HTTP status, `Type` and `Code` as AWS sends them. */
interface StsError {
  readonly status: number;
  readonly type: 'Sender' | 'Receiver';
  readonly code: string;
  readonly message: string;
}

/**
 * Starts a local AWS STS that speaks the query protocol of `GetWebIdentityToken` (a SigV4-signed
 * form POST with `Action=GetWebIdentityToken&Version=2011-06-15`, `Audience.member.N`,
 * `SigningAlgorithm`, `DurationSeconds`; an XML `GetWebIdentityTokenResponse`), so the real
 * `@aws-sdk/client-sts` talks to it through `AWS_ENDPOINT_URL_STS`. It issues JWTs signed with
 * its own keys (`iss` = its URL, `aud` = the audience list, a string when there is one) and
 * serves `/.well-known/openid-configuration` and the JWKS, so a test upstream verifies tokens
 * the way a third-party API does.
 */
export async function startFakeSts(options: FakeStsOptions = {}): Promise<FakeSts> {
  const host = options.host ?? '127.0.0.1';
  const clock = options.clock ?? Date.now;
  const subject = options.subject ?? DEFAULT_SUBJECT;
  const keys = await Promise.all([signingKey('RS256'), signingKey('ES384')]);
  const jwks: JSONWebKeySet = { keys: keys.map((k) => k.jwk) };
  const calls: FakeStsCall[] = [];
  let failure: FakeStsFailure | undefined;
  const gate = new HoldGate();
  let url = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
      return sendJson(res, {
        issuer: url,
        jwks_uri: `${url}${JWKS_PATH}`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: keys.map((k) => k.alg),
      });
    }
    if (req.method === 'GET' && path === JWKS_PATH) return sendJson(res, jwks);
    if (req.method !== 'POST' || path !== '/') return sendError(res, { status: 404, type: 'Sender', code: 'NotFound', message: 'unknown path' });

    const params = new URLSearchParams(body.toString('utf8'));
    if (params.get('Action') !== 'GetWebIdentityToken' || params.get('Version') !== API_VERSION) {
      return sendError(res, { status: 400, type: 'Sender', code: 'InvalidAction', message: 'only GetWebIdentityToken (2011-06-15) is implemented' });
    }
    const auth = parseSigV4Authorization(req.headers.authorization);
    if (auth === undefined) {
      return sendError(res, { status: 403, type: 'Sender', code: 'MissingAuthenticationToken', message: 'request is missing a SigV4 Authorization header' });
    }
    const audience = members(params, 'Audience');
    const signingAlgorithm = params.get('SigningAlgorithm') ?? '';
    const durationText = params.get('DurationSeconds');
    calls.push({ audience, signingAlgorithm, durationSeconds: durationText === null ? undefined : Number(durationText), accessKeyId: auth.accessKeyId });

    if (options.credentials !== undefined) {
      if (auth.accessKeyId !== options.credentials.accessKeyId) {
        return sendError(res, { status: 403, type: 'Sender', code: 'InvalidClientTokenId', message: 'The security token included in the request is invalid.' });
      }
      if ((await checkSigV4({ method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body }, options.credentials)).error !== undefined) {
        return sendError(res, { status: 403, type: 'Sender', code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided.' });
      }
    }
    await gate.passed();
    if (failure === 'drop') {
      req.socket.destroy();
      return;
    }
    if (failure !== undefined && failure !== 'no-expiration') return sendError(res, failureError(failure));

    const key = keys.find((k) => k.alg === signingAlgorithm);
    const duration = durationText === null ? DEFAULT_DURATION_SECONDS : Number(durationText);
    const invalid = validationProblem(audience, key, duration);
    if (invalid !== undefined) return sendError(res, { status: 400, type: 'Sender', code: 'ValidationError', message: invalid });

    const issuedAt = Math.floor(clock() / 1000);
    const expiresAt = issuedAt + duration;
    const token = await new SignJWT({
      'https://sts.amazonaws.com/': { aws_account: '123456789012', principal_id: subject, source_region: auth.region },
    })
      .setProtectedHeader({ alg: key!.alg, kid: key!.kid, typ: 'JWT' })
      .setIssuer(url)
      .setSubject(subject)
      .setAudience(audience.length === 1 ? audience[0]! : audience)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(key!.privateKey);
    sendXml(
      res,
      200,
      `<GetWebIdentityTokenResponse xmlns="${STS_NAMESPACE}">` +
        '<GetWebIdentityTokenResult>' +
        `<WebIdentityToken>${token}</WebIdentityToken>` +
        (failure === 'no-expiration' ? '' : `<Expiration>${new Date(expiresAt * 1000).toISOString()}</Expiration>`) +
        '</GetWebIdentityTokenResult>' +
        `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>` +
        '</GetWebIdentityTokenResponse>',
    );
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const listening = await listenFake(server, host);
  url = listening.url;

  return {
    url,
    issuer: url,
    jwks,
    calls,
    failWith(mode) {
      failure = mode;
    },
    hold: () => gate.hold(),
    close: () => listening.close(),
  };
}

async function signingKey(alg: FakeStsSigningAlgorithm): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'RS256' ? { modulusLength: 2048 } : {});
  const kid = `fake-sts-${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** The values of a query-protocol list parameter (`Name.member.1`, `Name.member.2`, ...), in order. */
function members(params: URLSearchParams, name: string): string[] {
  const values: string[] = [];
  for (let i = 1; params.has(`${name}.member.${i}`); i++) values.push(params.get(`${name}.member.${i}`)!);
  return values;
}

function validationProblem(audience: readonly string[], key: SigningKey | undefined, duration: number): string | undefined {
  if (audience.length === 0) return "1 validation error detected: Value null at 'audience' failed to satisfy constraint: Member must not be null";
  if (key === undefined) return "1 validation error detected: Value at 'signingAlgorithm' failed to satisfy constraint: Member must be one of [RS256, ES384]";
  if (!Number.isInteger(duration) || duration < MIN_DURATION_SECONDS || duration > MAX_DURATION_SECONDS) {
    return `1 validation error detected: Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must be between ${MIN_DURATION_SECONDS} and ${MAX_DURATION_SECONDS}`;
  }
  return undefined;
}

function failureError(mode: Exclude<FakeStsFailure, 'drop' | 'no-expiration'>): StsError {
  return mode === 'AccessDenied'
    ? { status: 403, type: 'Sender', code: 'AccessDenied', message: 'User is not authorized to perform: sts:GetWebIdentityToken' }
    : {
        status: 403,
        type: 'Sender',
        code: 'OutboundWebIdentityFederationDisabledException',
        message: 'Outbound web identity federation is not enabled for this account',
      };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: ServerResponse, error: StsError): void {
  sendXml(
    res,
    error.status,
    `<ErrorResponse xmlns="${STS_NAMESPACE}">` +
      `<Error><Type>${error.type}</Type><Code>${error.code}</Code><Message>${escapeXml(error.message)}</Message></Error>` +
      `<RequestId>${randomUUID()}</RequestId>` +
      '</ErrorResponse>',
  );
}

function sendXml(res: ServerResponse, status: number, xml: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}\n`;
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': randomUUID() });
  res.end(body);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
