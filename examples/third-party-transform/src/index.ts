/**
 * `@acme/proxy-transform-example`: a request guard for the egress proxy, written only against
 * `@proxy/core`'s public API. The proxy loads the `default` export.
 */
export { requestGuard, requestGuard as default } from './transform.js';
export type { RequestGuardConfig, RequestGuardInput } from './config.js';
