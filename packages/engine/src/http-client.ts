import type { HttpClient } from '@proxy/core';
import { fetch, type Dispatcher, type RequestInit as UndiciRequestInit } from 'undici';

/**
 * The HTTP client transforms use for their own calls (token endpoints, LLM APIs): fetch over
 * the engine's guarded dispatcher, so the deny list, the resolver and the upstream CA apply
 * to them exactly as to proxied traffic.
 */
export function guardedHttpClient(dispatcher: Dispatcher): HttpClient {
  return (input, init) => fetch(input, { ...(init as UndiciRequestInit | undefined), dispatcher }) as unknown as Promise<Response>;
}
