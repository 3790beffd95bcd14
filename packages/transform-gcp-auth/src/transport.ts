import type { gaxios } from 'google-auth-library';
import type { HttpClient, SecretRedactor } from '@proxy/core';
import { GOOGLE_TOKEN_URL } from './keyfile.js';

/** Longest a token call may take, retries included. */
export const TOKEN_REQUEST_TIMEOUT_MS = 30_000;

/** What {@link keyfileTransporter} needs. */
export interface TransporterOptions {
  /** The proxy's guarded HTTP client: the token endpoint is dialled through the upstream guard. */
  readonly http: HttpClient;
  /** Where the keyfile says to mint (its `token_uri`). */
  readonly tokenUri: URL;
  /** Keeps the signed assertion (a credential for an hour) out of every log line. */
  readonly redactor: SecretRedactor;
  /** The transform's lifetime: closing it abandons a call in flight. */
  readonly signal: AbortSignal;
  /** Names the assertion for the redactor. */
  readonly label: string;
}

/**
 * The gaxios instance google-auth-library mints through for a keyfile. google-auth-library
 * always posts to Google's endpoint; this sends the call to the keyfile's `token_uri` instead
 * (the same endpoint for Google's own keyfiles, a private one otherwise, as Go's
 * `google.JWTConfigFromJSON` honours it), through the proxy's guarded client, with the signed
 * assertion registered with the redactor before it leaves.
 */
export async function keyfileTransporter(options: TransporterOptions): Promise<gaxios.Gaxios> {
  const { gaxios: library } = await import('google-auth-library');
  const fetchImplementation = async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const target = url === GOOGLE_TOKEN_URL ? options.tokenUri.href : url;
    const assertion = typeof init?.body === 'string' || init?.body instanceof URLSearchParams ? new URLSearchParams(init.body).get('assertion') : null;
    if (assertion !== null) options.redactor.add(assertion, `${options.label}.assertion`);
    const signals = [options.signal, ...(init?.signal ? [init.signal] : [])];
    return options.http(target, { ...init, signal: AbortSignal.any(signals) });
  };
  return new library.Gaxios({ fetchImplementation, timeout: TOKEN_REQUEST_TIMEOUT_MS });
}
