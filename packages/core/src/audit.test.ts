import { describe, expect, it } from 'vitest';
import { AuditBuilder } from './audit.js';

const base = { id: 'r-1', host: 'api.example.com', port: 443, method: '', path: '', clientAddress: '10.0.0.7', sni: undefined, receivedAt: 1_000 };

describe('AuditBuilder tunnel group', () => {
  it('records the tunnel a request travelled in with the decision that opened it', () => {
    const audit = new AuditBuilder({ ...base, mode: 'mitm', tunnel: { protocol: 'socks5', target: 'api.example.com:443', decision: 'allow' } });
    const record = audit.finish(200, 1_005);
    expect(record.tunnel).toEqual({ protocol: 'socks5', target: 'api.example.com:443', decision: 'allow' });
    expect(record).toMatchObject({ mode: 'mitm', status_code: 200, duration_ms: 5 });
  });

  it('leaves the decision out on the request that opens the tunnel', () => {
    const audit = new AuditBuilder({ ...base, mode: 'tunnel', tunnel: { protocol: 'connect', target: 'api.example.com:8443' } });
    audit.rejected('allowlist', 'not_allowlisted');
    const record = audit.finish(403, 1_000);
    expect(record.tunnel).toEqual({ protocol: 'connect', target: 'api.example.com:8443' });
    expect(record).toMatchObject({ mode: 'tunnel', action: 'reject', rejected_by: 'allowlist' });
  });

  it('has no tunnel group outside a tunnel', () => {
    const record = new AuditBuilder({ ...base, mode: 'http', tunnel: undefined }).finish(200, 1_000);
    expect(record).not.toHaveProperty('tunnel');
  });
});

describe('AuditBuilder config_generation', () => {
  it('names the configuration generation when one is given, and is absent otherwise', () => {
    const audit = new AuditBuilder({ ...base, mode: 'http', tunnel: undefined });
    expect(audit.finish(200, 1_000)).not.toHaveProperty('config_generation');
    audit.configGeneration(3);
    expect(audit.finish(200, 1_000).config_generation).toBe(3);
  });

  it('cannot be overwritten by a stage group', () => {
    const audit = new AuditBuilder({ ...base, mode: 'http', tunnel: undefined });
    expect(() => audit.group('config_generation', 9)).toThrow(/overwrite/);
  });
});
