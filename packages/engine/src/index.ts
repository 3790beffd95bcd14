/**
 * @proxy/engine: listeners (plain HTTP, reverse, TLS interception or passthrough, CONNECT and
 * SOCKS5 tunnels), the one Fastify app all HTTP traffic ends in, the upstream guard and
 * streaming forwarding with undici.
 */
export { DEFAULT_CLIENT_LIMITS } from './client-limits.js';
export type { ClientLimits } from './client-limits.js';
export { createEngine } from './engine.js';
export type { Engine, EngineOptions, ListenerAddress, ReverseListenerOptions } from './engine.js';
export { TOKEN_RESULT_ANNOTATION } from './exchange-audit.js';
export { HTTP_METRIC_NAMES } from './http-metrics.js';
export type { UpstreamErrorType } from './http-metrics.js';
export { parseListenAddress } from './listen-address.js';
export { checkServerIdentity } from './server-identity.js';
export type { ListenAddress } from './listen-address.js';
export type { ListenerKind } from './listener.js';
export type { LeafCertificateSource, TlsMode } from './tls-interception.js';
export { DeniedDialError, UpstreamGuard } from './upstream-guard.js';
export type { BoundAddress, DeniedUpstreamForm, UpstreamGuardOptions, UpstreamTarget } from './upstream-guard.js';
export { parseUpstreamProxy, UpstreamProxyRoutes } from './upstream-proxy-routes.js';
export type { UpstreamProxy, UpstreamProxySettings } from './upstream-proxy-routes.js';
