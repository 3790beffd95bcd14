import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '@proxy/core';
import { ironProxyAuditLine } from './iron-proxy-audit.js';

function record(fields: Partial<AuditRecord>): AuditRecord {
  return {
    request_id: 'r-1',
    host: 'api.github.com',
    port: 443,
    method: 'POST',
    path: '/repos/o/r/issues',
    remote_addr: '172.20.0.4:51234',
    mode: 'mitm',
    action: 'reject',
    status_code: 403,
    duration_ms: 812.4,
    request_transforms: [{ name: 'allowlist', action: 'allow', duration_ms: 0.003 }],
    response_transforms: [],
    ...fields,
  };
}

describe('ironProxyAuditLine', () => {
  it("puts the request's core fields in the audit group, in iron-proxy's order, and keeps the rest at the top level", () => {
    const line = ironProxyAuditLine(
      record({ sni: 'api.github.com', rejected_by: 'github-write-guard', reason: 'not_allowlisted', tunnel: { target: 'api.github.com:443', protocol: 'connect', decision: 'allow' }, body_capture: { request_body: 'x' } }),
    );
    expect(Object.keys(line['audit'] as object)).toEqual(['host', 'method', 'path', 'remote_addr', 'sni', 'mode', 'action', 'status_code', 'duration_ms']);
    expect(line).toEqual({
      msg: 'request',
      audit: { host: 'api.github.com', method: 'POST', path: '/repos/o/r/issues', remote_addr: '172.20.0.4:51234', sni: 'api.github.com', mode: 'mitm', action: 'reject', status_code: 403, duration_ms: 812.4 },
      tunnel: { target: 'api.github.com:443' },
      tunnel_protocol: 'connect',
      tunnel_decision: 'allow',
      request_id: 'r-1',
      rejected_by: 'github-write-guard',
      reason: 'not_allowlisted',
      request_transforms: [{ name: 'allowlist', action: 'allow', duration_ms: 0.003 }],
      response_transforms: [],
      body_capture: { request_body: 'x' },
    });
  });

  it.each([
    ['mitm', 443, 'api.example.com', 'mitm'],
    ['http', 80, 'api.example.com', 'mitm'],
    ['http', 8080, 'api.example.com:8080', 'mitm'],
    ['reverse', 9000, 'api.example.com:9000', 'mitm'],
    ['sni-only', 443, 'api.example.com', 'sni-only'],
    ['tunnel', 443, 'api.example.com:443', 'mitm'],
  ] as const)('mode %s on port %i: host %s, mode %s', (mode, port, host, ironMode) => {
    const { audit } = ironProxyAuditLine(record({ mode, port, host: 'api.example.com' })) as { audit: Record<string, unknown> };
    expect(audit).toMatchObject({ host, mode: ironMode });
  });

  it('brackets an IPv6 destination before its port', () => {
    const { audit } = ironProxyAuditLine(record({ host: '2001:db8::1', port: 8443 })) as { audit: Record<string, unknown> };
    expect(audit['host']).toBe('[2001:db8::1]:8443');
  });

  it("writes a failure's reason as iron-proxy's error field", () => {
    const line = ironProxyAuditLine(record({ action: 'error', status_code: 502, reason: 'upstream_timeout' }));
    expect(line).toMatchObject({ error: 'upstream_timeout', reason: 'upstream_timeout' });
    expect(ironProxyAuditLine(record({ reason: 'not_allowlisted' }))).not.toHaveProperty('error');
  });
});
