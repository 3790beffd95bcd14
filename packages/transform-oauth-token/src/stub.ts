import { normalizeHost, respond, type ProxyRequest, type RespondDecision } from '@proxy/core';

/** The placeholder access token of the stub answer: meaningless, replaced on the way out. */
export const STUB_ACCESS_TOKEN = 'iron-proxy-stub-token';

/** The `stubbed` annotation of a stubbed token request. */
export const STUBBED_TOKEN_ENDPOINT = 'oauth2_token_endpoint';

/** The body of the stub answer, byte for byte as iron-proxy sends it. */
export const STUB_BODY = JSON.stringify({ access_token: STUB_ACCESS_TOKEN, expires_in: 3600, token_type: 'Bearer' });

/**
 * The configured token endpoints, matched by host (any port) and exact path, whatever the
 * method: a workload's own token request gets the stub and never reaches the endpoint.
 */
export class TokenEndpointStub {
  readonly #endpoints: readonly { readonly host: string; readonly path: string }[];

  constructor(endpoints: readonly URL[]) {
    this.#endpoints = endpoints.map((url) => ({ host: normalizeHost(url.hostname), path: url.pathname }));
  }

  /** The stub answer when `request` is for a token endpoint, else undefined. */
  answer(request: ProxyRequest): RespondDecision | undefined {
    for (const endpoint of this.#endpoints) {
      if (endpoint.host === request.host && endpoint.path === request.path) {
        return respond(200, STUB_BODY, { 'content-type': 'application/json', 'cache-control': 'no-store' }, STUBBED_TOKEN_ENDPOINT);
      }
    }
    return undefined;
  }
}
