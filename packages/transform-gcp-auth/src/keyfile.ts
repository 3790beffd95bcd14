import { createPrivateKey } from 'node:crypto';

/** Google's OAuth2 token endpoint, where a keyfile without `token_uri` mints. */
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/** The fields of a service-account keyfile that minting uses. */
export interface ServiceAccountKey {
  readonly clientEmail: string;
  /** PEM RSA private key. */
  readonly privateKey: string;
  readonly privateKeyId: string | undefined;
  /** Where the assertion is exchanged: the keyfile's `token_uri`, else Google's endpoint. */
  readonly tokenUri: URL;
}

/** A keyfile that cannot be used; the message names the field at fault, never a value. */
export class KeyfileError extends Error {
  override readonly name = 'KeyfileError';
}

/**
 * Parses a service-account keyfile (the JSON Google's console downloads): `type` must be
 * `service_account`, with `client_email`, an RSA `private_key` and, when present, an http(s)
 * `token_uri`. Throws a {@link KeyfileError} that never quotes the key.
 */
export function parseKeyfile(text: string): ServiceAccountKey {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyfileError('the keyfile is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new KeyfileError('the keyfile is not a JSON object');
  const fields = json as Record<string, unknown>;
  if (fields.type !== 'service_account') {
    const type = typeof fields.type === 'string' ? fields.type.slice(0, 40) : typeof fields.type;
    throw new KeyfileError(`the keyfile's type must be "service_account" (got ${type}); use credentials_provider for other credential types`);
  }
  const clientEmail = stringField(fields, 'client_email');
  const privateKey = stringField(fields, 'private_key');
  let keyType: string | undefined;
  try {
    keyType = createPrivateKey({ key: privateKey, format: 'pem' }).asymmetricKeyType;
  } catch {
    throw new KeyfileError("the keyfile's private_key is not a PEM private key");
  }
  if (keyType !== 'rsa') throw new KeyfileError(`the keyfile's private_key must be an RSA key (got ${keyType ?? 'unknown'})`);
  const privateKeyId = fields.private_key_id === undefined ? undefined : stringField(fields, 'private_key_id');
  const rawUri = fields.token_uri === undefined ? GOOGLE_TOKEN_URL : stringField(fields, 'token_uri');
  let tokenUri: URL;
  try {
    tokenUri = new URL(rawUri);
  } catch {
    throw new KeyfileError("the keyfile's token_uri is not a URL");
  }
  if (tokenUri.protocol !== 'https:' && tokenUri.protocol !== 'http:') throw new KeyfileError("the keyfile's token_uri must be an http or https URL");
  return { clientEmail, privateKey, privateKeyId, tokenUri };
}

function stringField(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || value === '') throw new KeyfileError(`the keyfile has no ${name}`);
  return value;
}
