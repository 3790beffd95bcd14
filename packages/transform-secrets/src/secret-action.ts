import type { ProxyRequest } from '@proxy/core';

/** What one secret entry does to a request in its scope. */
export interface SecretAction {
  /** The annotation the locations are reported under: `injected` or `swapped`. */
  readonly kind: 'injected' | 'swapped';
  /** True when a request in scope must carry the placeholder (replace with `require: true`). */
  readonly required: boolean;
  /**
   * Applies the secret to the request's head and returns where it went (`header:X-Api-Key`,
   * `query`, `path`, ...); empty when nothing was changed. `secret()` reads the current value
   * and is only called when the value is actually needed. Synchronous: a request whose
   * actions touch no body costs no promise.
   */
  apply(request: ProxyRequest, secret: () => string): string[];
  /**
   * Present when the action also works on the body (replace with `match_body`): reads it,
   * applies the secret, and resolves with `body` when it changed something.
   */
  applyToBody?(request: ProxyRequest, secret: () => string): Promise<string | undefined>;
}
