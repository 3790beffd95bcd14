/**
 * `@proxy/engine/config`: the engine's config checks and names, without the engine. What reads
 * or checks a config (the app's `validate`, the primary of a cluster, the metrics listener)
 * imports this entry and does not load Fastify or undici.
 */
export { HTTP_METRIC_NAMES } from './http-metrics.js';
export { parseListenAddress } from './listen-address.js';
export type { ListenAddress } from './listen-address.js';
export { parseUpstreamProxy, UpstreamProxyRoutes } from './upstream-proxy-routes.js';
export type { UpstreamProxy, UpstreamProxySettings } from './upstream-proxy-routes.js';
