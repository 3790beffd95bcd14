/**
 * @proxy/dns: the proxy's built-in DNS server. Every name resolves to the proxy (so workloads
 * whose resolver points here reach it without per-app settings), except static records and
 * passthrough names forwarded to the upstream resolver.
 */
export { createDnsServer } from './server.js';
export type { DnsServer, DnsServerOptions, DnsServerStats } from './server.js';
export type { DnsInterceptEvent } from './intercept-audit.js';
export type { StaticRecord } from './static-records.js';
export { listenError } from './listen.js';
