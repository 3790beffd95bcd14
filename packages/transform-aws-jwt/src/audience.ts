import { ConfigError, compileHostGlob, normalizeHost, type ProxyRequest } from '@proxy/core';

/** An audience set in its canonical form: sorted, each entry once. Sets equal as sets are equal here. */
export function normalizeAudiences(audiences: readonly string[]): readonly string[] {
  return [...new Set(audiences)].sort();
}

/**
 * The audience derived from a request's destination: `<scheme>://<host>`, the host lowercased
 * without a trailing dot, the port left out, an IPv6 literal in brackets. It is the host that is
 * dialled, so `API.example.com:443` and `api.example.com` give one audience.
 */
export function dynamicAudience(request: Pick<ProxyRequest, 'scheme' | 'host'>): string {
  const host = normalizeHost(request.host);
  return `${request.scheme}://${host.includes(':') ? `[${host}]` : host}`;
}

/** Whether a destination may have a token minted for its derived audience. */
export type AudiencePolicy = (request: Pick<ProxyRequest, 'scheme' | 'host'>) => boolean;

/**
 * Compiles `allowed_audiences`: each entry is a host glob (`*.example.com`, any scheme) or a
 * `scheme://host-glob` (`https://*.example.com`, that scheme only). Throws a `ConfigError`
 * naming the entry at fault.
 */
export function compileAudiencePolicy(entries: readonly string[]): AudiencePolicy {
  const issues: { path: string; message: string }[] = [];
  const matchers = entries.flatMap((entry, i) => {
    const at = entry.indexOf('://');
    const scheme = at < 0 ? undefined : entry.slice(0, at).toLowerCase();
    if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
      issues.push({ path: `allowed_audiences[${i}]`, message: `scheme must be http or https (got ${JSON.stringify(entry)})` });
      return [];
    }
    try {
      const host = compileHostGlob(at < 0 ? entry : entry.slice(at + 3));
      return [(request: Pick<ProxyRequest, 'scheme' | 'host'>) => (scheme === undefined || scheme === request.scheme) && host(request.host)];
    } catch {
      issues.push({ path: `allowed_audiences[${i}]`, message: `must be a host glob or scheme://host-glob (got ${JSON.stringify(entry)})` });
      return [];
    }
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return (request) => matchers.some((matches) => matches(request));
}
