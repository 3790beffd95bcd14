import { isWritten, type ConfigDocument, type MetricsConfig, type ProxyConfig } from '@proxy/config';

/** iron-proxy's metrics listener (`metrics.listen`'s default), which serves `/healthz`. */
export const IRON_PROXY_METRICS_LISTEN = ':9090';

/**
 * Which listeners a config opens, besides the reverse listeners (`proxy.reverse` as written) and
 * the management API (`management`, when written). With `compat.iron_proxy_defaults: true` a
 * config opens what iron-proxy opens for the same file: `proxy.http_listen` (`:80`),
 * `proxy.https_listen` (`:443`), DNS (`dns.listen`, `:53`) when a `dns` section enables it, and
 * the metrics listener on `:9090`, which serves `/healthz`, even without a `metrics` section.
 */
export interface ForwardListeners {
  /**
   * `proxy.http_listen` runs unless the file writes reverse listeners and no
   * `proxy.http_listen`: a sidecar config (such as the one the aws-outbound-jwt-proxy command
   * line produces) then opens no forward proxy on `:80` it never asked for. Always with
   * `compat.iron_proxy_defaults`.
   */
  readonly http: boolean;
  /**
   * `proxy.https_listen` runs when it or a `tls` section is written (iron-proxy listens on
   * `:443` by default, which needs a CA, so a file with neither has no HTTPS listener). Always
   * with `compat.iron_proxy_defaults`.
   */
  readonly https: boolean;
  /** `proxy.tunnel_listen` runs when set. */
  readonly tunnel: boolean;
  /** The DNS server runs when a `dns` section is written, not disabled, and names `proxy_ip`. */
  readonly dns: boolean;
  /**
   * The metrics endpoint (Prometheus scrape, `/healthz`, `/readyz`): the `metrics` section when
   * written; with `compat.iron_proxy_defaults`, iron-proxy's `:9090` otherwise; else none.
   */
  readonly metrics: MetricsConfig | undefined;
}

/** The listeners `config` (read from `document`) opens. */
export function forwardListeners(config: ProxyConfig, document: ConfigDocument): ForwardListeners {
  const ironProxy = config.compat.iron_proxy_defaults;
  const dns = config.dns;
  return {
    http: ironProxy || isWritten(document, ['proxy', 'http_listen']) || (config.proxy.reverse ?? []).length === 0,
    https: ironProxy || isWritten(document, ['proxy', 'https_listen']) || isWritten(document, ['tls']),
    tunnel: config.proxy.tunnel_listen !== undefined,
    dns: dns !== undefined && dns.enabled && dns.proxy_ip !== undefined,
    metrics: config.metrics ?? (ironProxy ? { listen: IRON_PROXY_METRICS_LISTEN, path: '/metrics' } : undefined),
  };
}
