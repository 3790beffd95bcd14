import type { Awaitable, ProxyRequest } from '@proxy/core';

/** What one secret entry does to a request in its scope. */
export interface SecretAction {
  /** The annotation the locations are reported under: `injected` or `swapped`. */
  readonly kind: 'injected' | 'swapped';
  /** True when a request in scope must carry the placeholder (replace with `require: true`). */
  readonly required: boolean;
  /**
   * Applies the secret to the request and returns where it went (`header:X-Api-Key`, `query`,
   * `body`, `path`, ...); empty when nothing was changed. `secret()` reads the current value
   * and is only called when the value is actually needed.
   */
  apply(request: ProxyRequest, secret: () => string): Awaitable<string[]>;
}
