import { describe, expect, it } from 'vitest';
import type { ProxyConfig } from '@proxy/config';
import { ignoredSettings } from './reloader.js';

const base = {
  proxy: { http_listen: ':80', https_listen: ':443', upstream_deny_cidrs: ['127.0.0.0/8'] },
  tls: { mode: 'mitm' },
  transforms: [{ name: 'allowlist', config: { domains: ['a.example'] } }],
  log: { level: 'info' },
} as unknown as ProxyConfig;

function withChanges(changes: Record<string, unknown>): ProxyConfig {
  return { ...base, ...changes } as unknown as ProxyConfig;
}

describe('ignoredSettings', () => {
  it('ignores nothing when only transforms, mcp, mcp_gateway and log change', () => {
    const next = withChanges({ transforms: [], log: { level: 'debug' }, mcp: { servers: [] }, mcp_gateway: { routes: [] } });
    expect(ignoredSettings(base, next)).toEqual([]);
  });

  it('names each changed field of a section a reload does not re-apply', () => {
    const next = withChanges({ proxy: { ...base.proxy, http_listen: ':8080', upstream_deny_cidrs: [] }, tls: { mode: 'sni-only' } });
    expect(ignoredSettings(base, next)).toEqual(['proxy.http_listen', 'proxy.upstream_deny_cidrs', 'tls.mode']);
  });

  it('names a whole section that appears or goes', () => {
    expect(ignoredSettings(base, withChanges({ metrics: { listen: ':9090', path: '/metrics' } }))).toEqual(['metrics']);
    expect(ignoredSettings(withChanges({ management: { listen: ':9092', api_key_env: 'K' } }), base)).toEqual(['management']);
  });

  it('names the log settings fixed when the process logger is made, and not the level', () => {
    const next = withChanges({ log: { level: 'debug', audit_format: 'iron-proxy', max_backlog_bytes: 65_536 } });
    expect(ignoredSettings(base, next)).toEqual(['log.audit_format', 'log.max_backlog_bytes']);
  });
});
