import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWTPayload } from 'jose';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import { hostForUrl } from './host.js';

/** One token endpoint call the provider answered (a granted token or an OAuth error). */
export interface OidcTokenCall {
  readonly grantType: string;
  readonly clientId: string | undefined;
  /** The OAuth error code, when the call failed. */
  readonly error: string | undefined;
}

/** Options for {@link startOidcTestProvider}. */
export interface OidcTestProviderOptions {
  /** Lifetime of access tokens, in seconds; default 3600. */
  readonly accessTokenTtlSeconds?: number;
  /** Issue a new refresh token on every refresh (and refuse reuse of the old one); default true. */
  readonly rotateRefreshTokens?: boolean;
}

/** A running oidc-provider authorization server. */
export interface OidcTestProvider {
  /** Its issuer (its base URL). */
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  /** The resource (the `aud` of every access token it issues; tokens are JWTs). */
  readonly resource: string;
  /** Every token endpoint call, in order. */
  readonly calls: OidcTokenCall[];
  /**
   * Registers a client, or changes one (a rotated secret: the old one is refused from then
   * on). Without a secret the client is public (`token_endpoint_auth_method: none`).
   */
  setClient(clientId: string, clientSecret?: string): Promise<void>;
  /** Issues a refresh token for `accountId` to a registered client, as an authorization code flow would. */
  issueRefreshToken(clientId: string, accountId?: string): Promise<string>;
  /** Answers every following token call with this HTTP status and a text body; undefined answers normally again. */
  failWith(status: number | undefined): void;
  /** Holds every following token call until the returned function is called. */
  hold(): () => void;
  /** Verifies an access token as a resource server does: signature by the JWKS, issuer, audience, expiry. */
  verify(token: string): Promise<JWTPayload>;
  close(): Promise<void>;
}

/** Scopes the resource server knows. */
const RESOURCE_SCOPES = 'api:read api:write';

/**
 * Starts [oidc-provider](https://github.com/panva/node-oidc-provider), a certified OpenID
 * provider, on loopback with the client credentials and refresh token grants, JWT access
 * tokens for one resource, refresh token rotation, and clients kept in its adapter so a test
 * can rotate a secret.
 */
export async function startOidcTestProvider(options: OidcTestProviderOptions = {}): Promise<OidcTestProvider> {
  const server: Server = createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${hostForUrl('127.0.0.1')}:${port}`;
  const resource = `${issuer}/api`;
  const ttl = options.accessTokenTtlSeconds ?? 3600;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: RESOURCE_SCOPES, audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: ttl, jwt: { sign: { alg: 'RS256' } } }),
      },
    },
    scopes: ['openid', 'offline_access', ...RESOURCE_SCOPES.split(' ')],
    rotateRefreshToken: options.rotateRefreshTokens ?? true,
    findAccount: (_ctx, sub) => Promise.resolve({ accountId: sub, claims: () => Promise.resolve({ sub }) }),
    ttl: { AccessToken: ttl, ClientCredentials: ttl, RefreshToken: 86_400, Grant: 86_400, IdToken: 3600 },
  });

  const calls: OidcTokenCall[] = [];
  let failure: number | undefined;
  let gate: Promise<void> | undefined;
  provider.use(async (ctx, next) => {
    if (ctx.path === '/token') {
      if (gate !== undefined) await gate;
      if (failure !== undefined) {
        ctx.status = failure;
        ctx.type = 'text/plain';
        ctx.body = 'the authorization server is failing on purpose';
        return;
      }
    }
    await next();
  });
  const record = (ctx: KoaContextWithOIDC, error: string | undefined): void => {
    const params = ctx.oidc?.params as { grant_type?: unknown; client_id?: unknown } | undefined;
    calls.push({
      grantType: typeof params?.grant_type === 'string' ? params.grant_type : '',
      clientId: ctx.oidc?.client?.clientId ?? (typeof params?.client_id === 'string' ? params.client_id : undefined),
      error,
    });
  };
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => record(ctx, undefined));
  provider.on('grant.error', (ctx: KoaContextWithOIDC, err: { error?: string }) => record(ctx, err.error ?? 'server_error'));
  server.on('request', provider.callback());

  const jwksUri = `${issuer}/jwks`;
  const keySet = createRemoteJWKSet(new URL(jwksUri));

  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    jwksUri,
    resource,
    calls,
    async setClient(clientId, clientSecret) {
      // Clients live in the provider's adapter (its types leave the adapter out), so a secret can change.
      const clients = (provider.Client as unknown as { adapter: { upsert(id: string, payload: object, expiresIn: number): Promise<void> } }).adapter;
      await clients.upsert(
        clientId,
        {
          client_id: clientId,
          ...(clientSecret === undefined ? { token_endpoint_auth_method: 'none' } : { client_secret: clientSecret, token_endpoint_auth_method: 'client_secret_post' }),
          grant_types: clientSecret === undefined ? ['authorization_code', 'refresh_token'] : ['client_credentials', 'authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: ['https://client.example.test/callback'],
          scope: `openid offline_access ${RESOURCE_SCOPES}`,
        },
        86_400,
      );
    },
    async issueRefreshToken(clientId, accountId = 'user-1') {
      const client = await provider.Client.find(clientId);
      if (client === undefined) throw new Error(`client ${clientId} is not registered`);
      const grant = new provider.Grant({ accountId, clientId });
      grant.addOIDCScope('openid offline_access');
      grant.addResourceScope(resource, RESOURCE_SCOPES);
      const grantId = await grant.save();
      const refreshToken = new provider.RefreshToken({
        accountId,
        client,
        grantId,
        gty: 'authorization_code',
        scope: `openid offline_access ${RESOURCE_SCOPES}`,
        resource,
        authTime: Math.floor(Date.now() / 1000),
      });
      return refreshToken.save();
    },
    failWith(status) {
      failure = status;
    },
    hold() {
      let release!: () => void;
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
    async verify(token) {
      const { payload } = await jwtVerify(token, keySet, { issuer, audience: resource });
      return payload;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
