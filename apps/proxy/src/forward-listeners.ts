import { isWritten, type ConfigDocument, type ProxyConfig } from '@proxy/config';

/** Which forward listeners a config opens; the reverse listeners are `proxy.reverse` as written. */
export interface ForwardListeners {
  /**
   * `proxy.http_listen` runs unless the file writes reverse listeners and no
   * `proxy.http_listen`: a sidecar config (such as the one the aws-outbound-jwt-proxy command
   * line produces) then opens no forward proxy on `:80` it never asked for.
   */
  readonly http: boolean;
  /**
   * `proxy.https_listen` runs when it or a `tls` section is written (iron-proxy listens on
   * `:443` by default, which needs a CA, so a file with neither has no HTTPS listener).
   */
  readonly https: boolean;
  /** `proxy.tunnel_listen` runs when set. */
  readonly tunnel: boolean;
}

/** The forward listeners `config` (read from `document`) opens. */
export function forwardListeners(config: ProxyConfig, document: ConfigDocument): ForwardListeners {
  return {
    http: isWritten(document, ['proxy', 'http_listen']) || (config.proxy.reverse ?? []).length === 0,
    https: isWritten(document, ['proxy', 'https_listen']) || isWritten(document, ['tls']),
    tunnel: config.proxy.tunnel_listen !== undefined,
  };
}
