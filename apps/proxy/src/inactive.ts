import type { ProxyConfig } from '@proxy/config';

/** A configured section whose feature this build does not run yet. */
export interface InactiveSection {
  readonly section: string;
  readonly detail: string;
}

/**
 * Lists the config sections that were validated but are not active in this build, so the app
 * can say so once at startup instead of ignoring them silently or pretending.
 * `raw` is the document as written (to tell an explicit setting from a default).
 */
export function inactiveSections(config: ProxyConfig, raw: unknown): InactiveSection[] {
  const written = (path: string[]): boolean => {
    let node: unknown = raw;
    for (const key of path) {
      if (typeof node !== 'object' || node === null || !(key in node)) return false;
      node = (node as Record<string, unknown>)[key];
    }
    return true;
  };
  const out: InactiveSection[] = [];
  if (config.dns !== undefined && config.dns.enabled !== false) {
    out.push({ section: 'dns', detail: `the built-in DNS server (dns.listen ${config.dns.listen}) is not active yet; dns.upstream_resolver is used for upstream lookups` });
  }
  out.push({
    section: 'proxy.https_listen',
    detail: written(['proxy', 'https_listen'])
      ? `TLS interception on ${config.proxy.https_listen} is not active yet`
      : `TLS interception (default ${config.proxy.https_listen}) is not active yet`,
  });
  if (config.proxy.tunnel_listen !== undefined) {
    out.push({ section: 'proxy.tunnel_listen', detail: `the CONNECT/SOCKS5 listener on ${config.proxy.tunnel_listen} is not active yet` });
  }
  if (written(['tls'])) out.push({ section: 'tls', detail: 'TLS settings apply to interception, which is not active yet' });
  if (written(['mcp'])) out.push({ section: 'mcp', detail: 'MCP tool-call interception is not active yet' });
  if (written(['management'])) out.push({ section: 'management', detail: 'the management API is not active yet' });
  if (written(['metrics'])) out.push({ section: 'metrics', detail: 'the metrics endpoint is not active yet' });
  return out;
}
