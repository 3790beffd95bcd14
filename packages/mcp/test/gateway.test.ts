import { describe, expect, it } from 'vitest';
import { runTransform, validateTransformConfig } from '@proxy/core/testing';
import { mcpGatewayConfigProblems, mcpPolicy, type McpGatewayConfig } from '../src/index.js';

const TOKEN = 'ghp_gateway-secret-value-0123456789';

const gateway = (routes: unknown[]) => ({ routes });
const route = (extra: Record<string, unknown> = {}) => ({
  name: 'github',
  rules: [{ host: 'mcp.internal.test' }],
  upstream: 'https://api.upstream.test:8443/v1/mcp?tenant=acme',
  credentials: [{ source: { type: 'env', var: 'GH_TOKEN' }, inject: { header: 'authorization', formatter: 'Bearer {{ .Value }}' } }],
  ...extra,
});

/** The `mcp` stage with one governed server (every tool allowed but `delete_repository`) and `routes`. */
const stage = (routes: unknown[]) => ({
  servers: [{ name: 'github', rules: [{ host: 'mcp.internal.test' }], tools: [{ name: 'search' }] }],
  gateway: gateway(routes),
});

const call = (name: string) => JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: {} } });

const run = (routes: unknown[], request: Parameters<typeof runTransform>[2], env: Record<string, string> = { GH_TOKEN: TOKEN }) =>
  runTransform(mcpPolicy, stage(routes), { host: 'mcp.internal.test', scheme: 'https', ...request }, { env });

describe('mcp_gateway routes', () => {
  it('injects the credential and sends an allowed call to the upstream URL, its query first', async () => {
    const result = await run([route()], { method: 'POST', path: '/client/path', query: 'session=1', body: call('search'), headers: { 'Content-Type': 'application/json' } });
    expect(result.decision.action).toBe('continue');
    expect(result.request).toMatchObject({ scheme: 'https', host: 'api.upstream.test', port: 8443, path: '/v1/mcp', query: 'tenant=acme&session=1' });
    expect(result.request.headers.get('authorization')).toBe(`Bearer ${TOKEN}`);
    expect(result.request.headers.getAll('host')).toEqual(['api.upstream.test:8443']);
    expect((result.audit.mcp as Record<string, unknown>).gateway).toEqual({
      route: 'github',
      upstream: 'https://api.upstream.test:8443/v1/mcp?tenant=acme',
      credentials_injected: ['GH_TOKEN:header:Authorization'],
    });
    expect(result.audit.request_transforms[0]).toMatchObject({ name: 'mcp', annotations: { retarget: 'https://api.upstream.test:8443' } });
    // The audit record keeps the request as the client sent it, and never the secret.
    expect(result.audit).toMatchObject({ host: 'mcp.internal.test', path: '/client/path' });
    expect(JSON.stringify(result.audit)).not.toContain(TOKEN);
    expect(JSON.stringify(result.logs)).not.toContain(TOKEN);
  });

  it('never routes a denied call: the policy answers and nothing is injected', async () => {
    const result = await run([route()], { method: 'POST', path: '/mcp', body: call('delete_repository'), headers: { 'Content-Type': 'application/json' } });
    expect(result.decision).toMatchObject({ action: 'reject', status: 200, reason: 'tool_not_allowed' });
    expect(result.request.host).toBe('mcp.internal.test');
    expect(result.request.headers.get('authorization')).toBeUndefined();
    expect((result.audit.mcp as Record<string, unknown>).gateway).toBeUndefined();
  });

  it('routes the GET event stream and the DELETE of a governed server too', async () => {
    for (const method of ['GET', 'DELETE']) {
      const result = await run([route()], { method, path: '/mcp' });
      expect(result.decision.action).toBe('continue');
      expect(result.request).toMatchObject({ host: 'api.upstream.test', path: '/v1/mcp' });
      expect((result.audit.mcp as Record<string, unknown>).gateway).toMatchObject({ route: 'github' });
    }
  });

  it('injects a query parameter (its formatter applied), replacing one the client sent', async () => {
    const queried = route({
      upstream: 'http://10.1.2.3/mcp',
      credentials: [{ source: { type: 'env', var: 'GH_TOKEN' }, inject: { query_param: 'key', formatter: 'k-{{ .Value }}' } }],
    });
    const result = await run([queried], { method: 'GET', path: '/x', query: 'key=attacker&a=1' });
    expect(result.request).toMatchObject({ scheme: 'http', host: '10.1.2.3', port: 80, path: '/mcp', query: `a=1&key=k-${encodeURIComponent(TOKEN)}` });
    expect((result.audit.mcp as Record<string, unknown>).gateway).toMatchObject({ upstream: 'http://10.1.2.3/mcp', credentials_injected: ['GH_TOKEN:query:key'] });
    expect(JSON.stringify(result.audit)).not.toContain(TOKEN);
  });

  it('fails closed (502) when a required credential is unavailable, and goes on without an optional one', async () => {
    const required = await run([route()], { method: 'GET', path: '/mcp' }, {});
    expect(required.decision).toMatchObject({ action: 'reject', status: 502, reason: 'gateway_credential_unavailable' });
    expect(required.audit).toMatchObject({ action: 'error', reason: 'gateway_credential_unavailable' });
    const optional = route({ credentials: [{ source: { type: 'env', var: 'GH_TOKEN' }, inject: { header: 'X-Key' }, require: false }] });
    const result = await run([optional], { method: 'GET', path: '/mcp' }, {});
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.get('x-key')).toBeUndefined();
    expect((result.audit.mcp as Record<string, unknown>).gateway).toMatchObject({ credentials_injected: [] });
  });

  it('takes the first route whose rules match, and leaves requests no route matches alone', async () => {
    const docs = route({ name: 'docs', rules: [{ host: 'mcp.internal.test', paths: ['/docs/*'] }], upstream: 'https://docs.upstream.test/mcp', credentials: [] });
    const routed = await run([docs, route()], { method: 'GET', path: '/docs/a' });
    expect(routed.request.host).toBe('docs.upstream.test');
    const unrouted = await run([docs], { method: 'GET', path: '/other' });
    expect(unrouted.request.host).toBe('mcp.internal.test');
    expect(unrouted.audit.mcp).toBeUndefined();
  });
});

describe('mcp_gateway config', () => {
  it('defaults require to true and refuses an inject with both or neither location', () => {
    const both = route({ credentials: [{ source: { type: 'env', var: 'A' }, inject: { header: 'X-A', query_param: 'a' } }] });
    expect(validateTransformConfig(mcpPolicy, stage([both])).length).toBeGreaterThan(0);
    const neither = route({ credentials: [{ source: { type: 'env', var: 'A' }, inject: {} }] });
    expect(validateTransformConfig(mcpPolicy, stage([neither])).length).toBeGreaterThan(0);
    expect(validateTransformConfig(mcpPolicy, stage([route({ rules: [] })])).length).toBeGreaterThan(0);
    expect(validateTransformConfig(mcpPolicy, stage([route()]))).toEqual([]);
  });

  it.each([
    ['not a URL', 'mcp.example.com/mcp', 'must be an absolute URL'],
    ['another scheme', 'ftp://mcp.example.com/', 'must use http or https, not ftp'],
    ['userinfo', 'https://user:pw@mcp.example.com/', 'must not carry a user name or password'],
    ['a fragment', 'https://mcp.example.com/mcp#x', 'must not include a fragment'],
  ])('refuses an upstream with %s', (_what, upstream, message) => {
    const config = { routes: [{ ...route(), upstream, credentials: [] }] } as unknown as McpGatewayConfig;
    expect(mcpGatewayConfigProblems(config)).toEqual([{ path: ['routes', 0, 'upstream'], message: expect.stringContaining(message) }]);
  });

  it('refuses duplicate route names', () => {
    const config = { routes: [route(), route()] } as unknown as McpGatewayConfig;
    expect(mcpGatewayConfigProblems(config)).toEqual([{ path: ['routes', 1, 'name'], message: 'duplicate route name "github"' }]);
  });
});
