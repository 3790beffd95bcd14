import { createHash } from 'node:crypto';
import type { GoogleAuth } from 'google-auth-library';
import type { Clock, HttpClient, SecretHandle, SecretRedactor } from '@proxy/core';
import { parseKeyfile, type ServiceAccountKey } from './keyfile.js';
import { MintError, toMintError } from './mint-error.js';
import type { MintedToken } from './token-cache.js';
import { keyfileTransporter } from './transport.js';

/** The credential to mint from, as it is now. */
export interface CurrentCredential {
  /** Changes when the credential does (a rotated keyfile): the cached token is then dropped. */
  readonly generation: string;
  /** The service account's email, when known before minting. */
  readonly serviceAccount: string | undefined;
  /** Mints a token from this credential. Rejects with a {@link MintError}. */
  mint(): Promise<MintedToken>;
}

/** Where a transform's service-account credential comes from. */
export interface CredentialSource {
  /** The credential as it is now; throws a {@link MintError} when there is none. */
  current(): CurrentCredential;
}

/** What minting from a keyfile needs besides the key. */
export interface KeyfileMintOptions {
  readonly http: HttpClient;
  readonly redactor: SecretRedactor;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Names the transform instance for the redactor's labels. */
  readonly label: string;
}

/** What a token is minted for: an access token with scopes (and a delegated subject), or an ID token for an audience. */
export type TokenRequest = { readonly kind: 'access'; readonly scopes: readonly string[]; readonly subject: string | undefined } | { readonly kind: 'id'; readonly audience: string };

/**
 * Mints with google-auth-library's `JWT` client: an RS256 assertion signed with the keyfile's
 * key, exchanged at its `token_uri` through the proxy's guarded client. The token's lifetime
 * is taken from the answer and placed on the transform's clock. google-auth-library (about
 * 6 MiB resident) is loaded by the first mint, not by every proxy that lists the transform.
 */
export async function mintWithKey(key: ServiceAccountKey, request: TokenRequest, options: KeyfileMintOptions): Promise<MintedToken> {
  const { JWT } = await import('google-auth-library');
  const transporter = await keyfileTransporter({ http: options.http, tokenUri: key.tokenUri, redactor: options.redactor, signal: options.signal, label: options.label });
  const client = new JWT({
    email: key.clientEmail,
    key: key.privateKey,
    ...(key.privateKeyId === undefined ? {} : { keyId: key.privateKeyId }),
    ...(request.kind === 'access' ? { scopes: [...request.scopes], ...(request.subject === undefined ? {} : { subject: request.subject }) } : {}),
    transporter,
  });
  const mintedAt = options.clock.now();
  try {
    if (request.kind === 'id') {
      const token = await client.fetchIdToken(request.audience);
      options.redactor.add(token, `${options.label}.id_token`);
      // An ID token's lifetime is its `exp` claim; Google's last an hour.
      return { token, expiresAt: mintedAt + idTokenLifetimeMs(token), mintedAt };
    }
    const credentials = await client.authorize();
    const token = credentials.access_token;
    if (typeof token !== 'string' || token === '') throw new MintError('token_endpoint_error', 'the token endpoint answered without an access_token');
    options.redactor.add(token, `${options.label}.access_token`);
    const expiry = credentials.expiry_date;
    return { token, expiresAt: typeof expiry === 'number' ? mintedAt + Math.max(0, expiry - Date.now()) : undefined, mintedAt };
  } catch (err) {
    throw toMintError(err);
  }
}

/** Lifetime of an ID token from its `exp` and `iat` claims (read unverified: the proxy minted it); an hour when absent. */
function idTokenLifetimeMs(token: string): number {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown; iat?: unknown };
    if (typeof claims.exp === 'number' && typeof claims.iat === 'number' && claims.exp > claims.iat) return (claims.exp - claims.iat) * 1000;
  } catch {
    // Not a JWT payload: the default below.
  }
  return 3_600_000;
}

/** A keyfile read once (from `keyfile_path`): one generation for the transform's life. */
export function staticKeyfile(key: ServiceAccountKey, request: TokenRequest, options: KeyfileMintOptions): CredentialSource {
  const current: CurrentCredential = { generation: 'keyfile_path', serviceAccount: key.clientEmail, mint: () => mintWithKey(key, request, options) };
  return { current: () => current };
}

/**
 * A keyfile from a secret source, read on every request: a value the source refreshed (`ttl`)
 * is a new generation, parsed once and minted from on the next request, without a restart.
 */
export function sourcedKeyfile(handle: SecretHandle, request: TokenRequest, options: KeyfileMintOptions): CredentialSource {
  let parsed: { readonly fingerprint: string; readonly key: ServiceAccountKey | MintError } | undefined;
  return {
    current() {
      let text: string;
      try {
        if (!handle.available) throw new Error('no value fetched');
        text = handle.value();
      } catch (err) {
        throw new MintError('keyfile_unavailable', `the keyfile (${handle.type} ${handle.label}) is unavailable`, { cause: err, credential: handle.label });
      }
      const fingerprint = createHash('sha256').update(text).digest('base64url');
      if (parsed?.fingerprint !== fingerprint) {
        let key: ServiceAccountKey | MintError;
        try {
          key = parseKeyfile(text);
        } catch (err) {
          key = new MintError('keyfile_invalid', `the keyfile (${handle.type} ${handle.label}): ${(err as Error).message}`, { cause: err });
        }
        parsed = { fingerprint, key };
      }
      const key = parsed.key;
      if (key instanceof MintError) throw key;
      return { generation: fingerprint, serviceAccount: key.clientEmail, mint: () => mintWithKey(key, request, options) };
    },
  };
}

/**
 * Application Default Credentials (`credentials_provider: workload_identity`): google-auth-library's
 * `GoogleAuth` finds them (`GOOGLE_APPLICATION_CREDENTIALS`, GKE Workload Identity and the
 * metadata server, Workload Identity Federation) and mints with its own HTTP transport: the
 * metadata server and the federation endpoints are control-plane addresses the upstream guard
 * denies by default. The client is made on the first mint (loading the library then), found
 * once and keeps its own refresh state.
 */
export function applicationDefaultCredentials(scopes: readonly string[], options: { readonly clock: Clock; readonly redactor: SecretRedactor; readonly label: string }): CredentialSource {
  let auth: Promise<GoogleAuth> | undefined;
  const mint = async (): Promise<MintedToken> => {
    const mintedAt = options.clock.now();
    try {
      auth ??= import('google-auth-library').then((library) => new library.GoogleAuth({ scopes: [...scopes] }));
      const client = await (await auth).getClient();
      const { token } = await client.getAccessToken();
      if (typeof token !== 'string' || token === '') throw new MintError('mint_failed', 'Application Default Credentials gave no access token');
      options.redactor.add(token, `${options.label}.access_token`);
      const expiry = client.credentials.expiry_date;
      return { token, expiresAt: typeof expiry === 'number' ? mintedAt + Math.max(0, expiry - Date.now()) : undefined, mintedAt };
    } catch (err) {
      throw toMintError(err);
    }
  };
  const current: CurrentCredential = { generation: 'workload_identity', serviceAccount: undefined, mint };
  return { current: () => current };
}
