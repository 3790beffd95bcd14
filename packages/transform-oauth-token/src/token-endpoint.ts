import type { HttpClient } from '@proxy/core';
import { MintError } from './mint-error.js';

/** Largest token endpoint answer read; a token response is a few kilobytes at most. */
export const MAX_TOKEN_RESPONSE_BYTES = 256 * 1024;

/** A `fetch` as oauth4webapi calls it through its `customFetch` option. */
export type TokenFetch = (url: string, init: RequestInit) => Promise<Response>;

/**
 * The fetch oauth4webapi posts grants with: the transform's HTTP client (through the proxy's
 * upstream guard), the answer read whole up to {@link MAX_TOKEN_RESPONSE_BYTES}.
 *
 * An `id_token` in a successful answer is dropped before oauth4webapi sees it: the proxy uses
 * only the access token, and an ID token can only be checked against the issuer, which the
 * config does not name (a Google refresh token granted with `openid` brings one on every
 * exchange, issued by `accounts.google.com` for a `oauth2.googleapis.com` endpoint).
 */
export function tokenFetch(http: HttpClient): TokenFetch {
  return async (url, init) => {
    const response = await http(url, init);
    const text = await readBounded(response);
    let body = text;
    if (response.status === 200) {
      try {
        const json: unknown = JSON.parse(text);
        if (typeof json === 'object' && json !== null && !Array.isArray(json) && 'id_token' in json) {
          const { id_token: _dropped, ...rest } = json as Record<string, unknown>;
          body = JSON.stringify(rest);
        }
      } catch {
        // Not JSON: oauth4webapi reports it.
      }
    }
    const headers = new Headers(response.headers);
    // The body is decoded and re-measured here.
    headers.delete('content-encoding');
    headers.delete('content-length');
    const empty = response.status === 204 || response.status === 205 || response.status === 304;
    return new Response(empty ? null : body, { status: response.status, statusText: response.statusText, headers });
  };
}

/** The body as text; a larger one than the bound is a failed mint, not a buffer without end. */
async function readBounded(response: Response): Promise<string> {
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream.
    if (size > MAX_TOKEN_RESPONSE_BYTES) {
      throw new MintError('token_endpoint_error', `the token endpoint's answer is larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
