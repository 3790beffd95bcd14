/**
 * Load-time check of `proxy.upstream_proxy`: each proxy URL is parsed as the engine will use
 * it, so a bad one is reported with the other config problems (at its line, or at the
 * `HTTP_PROXY`/`HTTPS_PROXY` variable that set it) instead of failing later.
 */
import type { ConfigIssue } from '@proxy/core';
import { issueAt, type ConfigDocument, type ProxyConfig } from '@proxy/config';
import { parseUpstreamProxy } from '@proxy/engine/config';

/** The issues of the config's upstream proxy URLs. */
export function upstreamProxyIssues(document: ConfigDocument, config: ProxyConfig): ConfigIssue[] {
  const settings = config.proxy.upstream_proxy;
  if (settings === undefined) return [];
  return (['http_proxy', 'https_proxy'] as const).flatMap((field) => {
    const value = settings[field];
    if (value === undefined || value === '') return [];
    try {
      parseUpstreamProxy(value, field);
      return [];
    } catch (err) {
      // The engine's message starts with the setting's name; the issue carries the path instead.
      return [issueAt(document, ['proxy', 'upstream_proxy', field], (err as Error).message.replace(`${field}: `, ''))];
    }
  });
}
