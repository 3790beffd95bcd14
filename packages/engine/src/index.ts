/**
 * @proxy/engine: listeners (plain HTTP, reverse, TLS interception or passthrough, CONNECT and
 * SOCKS5 tunnels), the one Fastify app all HTTP traffic ends in, the upstream guard and
 * streaming forwarding with undici.
 */
export { createEngine } from './engine.js';
export type { Engine, EngineOptions, ListenerAddress, ReverseListenerOptions } from './engine.js';
export type { ListenerKind } from './listener.js';
export type { LeafCertificateSource, TlsMode } from './tls-interception.js';
export { UpstreamGuard } from './upstream-guard.js';
export type { UpstreamGuardOptions, UpstreamTarget } from './upstream-guard.js';
