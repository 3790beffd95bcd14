/**
 * `grpc` end to end: the built binary with an allowlist, a `grpc` policy server (written here
 * with @grpc/grpc-js from the transform's own `.proto`) and a `secrets` injection after it,
 * driven by curl. Covers continue with changes and annotations, a reject with the server's
 * answer, response changes, a deadline, and host rewrites: to an allowed host (followed, the
 * credential of the old host not sent), to a host the allowlist refuses and to an address the
 * upstream guard denies (both refused, nothing dialled). No secret reaches the policy server or
 * the proxy's output.
 */
import { createServer, type Server as NetServer } from 'node:net';
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { transformService } from '@proxy/transform-grpc/service';
import { type TransformRequestRequest, type TransformRequestResponse, type TransformResponseRequest, type TransformResponseResponse } from '@proxy/transform-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand, startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';

const SECRET = 'sk-grpc-e2e-real-credential-4711';

let echo: EchoServer;
let dns: DnsTestServer;
let policy: Server;
let policyPort: number;
/** A listener on the denied address: it counts connections, and must count none. */
let denied: NetServer;
let deniedConnections = 0;
let deniedPort: number;
let proxy: ProxyProcess;
const calls: unknown[] = [];

/** The policy: what each test path asks of it. */
function decideRequest(call: TransformRequestRequest): TransformRequestResponse | 'hang' {
  const url = call.request.url ?? '';
  const headers = call.request.headers ?? {};
  if (url.startsWith('/allow')) {
    return {
      action: 'TRANSFORM_ACTION_CONTINUE',
      annotations: { verdict: 'allow', policy: 'e2e-v1' },
      modified_request: { headers: { ...headers, 'X-Policy': { values: ['checked'] } }, url: '/allowed?by=policy' },
    };
  }
  if (url.startsWith('/deny')) {
    return {
      action: 'TRANSFORM_ACTION_REJECT',
      annotations: { verdict: 'deny' },
      response: { status_code: 451, headers: { 'Content-Type': { values: ['application/json'] } }, body: Buffer.from('{"error":"denied by policy"}') },
    };
  }
  if (url.startsWith('/mirror')) return { modified_request: { host: `mirror.example.test:${echo.port}` } };
  if (url.startsWith('/elsewhere')) return { modified_request: { host: `elsewhere.example.test:${echo.port}` } };
  if (url.startsWith('/guarded')) return { modified_request: { host: `denied.example.test:${deniedPort}` } };
  if (url.startsWith('/hang')) return 'hang';
  return { action: 'TRANSFORM_ACTION_CONTINUE' };
}

function decideResponse(call: TransformResponseRequest): TransformResponseResponse {
  if (call.request.url !== '/response') return { action: 'TRANSFORM_ACTION_CONTINUE' };
  return { modified_response: { status_code: 202, body: Buffer.from(`policy saw ${call.response.body?.length ?? 0} bytes`) } };
}

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  denied = createServer((socket) => {
    deniedConnections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => denied.listen(0, '127.0.0.2', resolve));
  deniedPort = (denied.address() as { port: number }).port;
  dns = await startDnsServer({
    records: {
      'api.example.test': { A: ['127.0.0.1'] },
      'mirror.example.test': { A: ['127.0.0.1'] },
      'elsewhere.example.test': { A: ['127.0.0.1'] },
      'denied.example.test': { A: ['127.0.0.2'] },
    },
  });

  policy = new Server();
  const hung: (() => void)[] = [];
  policy.addService(transformService().definition, {
    TransformRequest(call: ServerUnaryCall<TransformRequestRequest, TransformRequestResponse>, callback: sendUnaryData<TransformRequestResponse>) {
      calls.push(call.request);
      const answer = decideRequest(call.request);
      if (answer === 'hang') hung.push(() => callback({ code: status.CANCELLED }));
      else callback(null, answer);
    },
    TransformResponse(call: ServerUnaryCall<TransformResponseRequest, TransformResponseResponse>, callback: sendUnaryData<TransformResponseResponse>) {
      calls.push(call.request);
      callback(null, decideResponse(call.request));
    },
  });
  policyPort = await new Promise<number>((resolve, reject) =>
    policy.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err === null ? resolve(port) : reject(err))),
  );

  proxy = await startProxyProcess(
    `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: ["127.0.0.2/32"]
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test", "mirror.example.test", "denied.example.test"]
      default_ports: ["*"]
  - name: grpc
    config:
      name: policy-engine
      target: "127.0.0.1:${policyPort}"
      timeout: 500ms
      send_request_body: true
      send_response_body: true
  - name: secrets
    config:
      secrets:
        - source: {type: env, var: API_TOKEN}
          inject: {header: Authorization, formatter: "Bearer {{ .Value }}"}
          rules:
            - host: "api.example.test"
log:
  level: info
`,
    { env: { API_TOKEN: SECRET } },
  );
});

afterAll(async () => {
  await proxy?.stop();
  policy?.forceShutdown();
  await new Promise((resolve) => denied?.close(resolve));
  await echo?.close();
  await dns?.close();
});

/** curl through the proxy; returns the body and, last, the status code. */
async function viaProxy(path: string, ...args: string[]): Promise<{ body: string; status: string }> {
  const r = await curl(['-x', `http://127.0.0.1:${proxy.port('http')}`, '-w', '\n%{http_code}', ...args, `http://api.example.test:${echo.port}${path}`]);
  const lines = r.stdout.split('\n');
  const status = lines.pop()!;
  return { body: lines.join('\n'), status };
}

function auditFor(path: string): Promise<LogLine> {
  return proxy.waitForLine((l) => l.msg === 'request' && l.path === path);
}

describe('grpc transform through the built proxy', () => {
  it('forwards with the policy server\'s changes, its annotations in the audit record', async () => {
    const { body, status: code } = await viaProxy('/allow', '-d', 'payload');
    expect(code).toBe('200');
    const seen = JSON.parse(body) as { path: string; query: string; headers: Record<string, string> };
    expect(seen.path).toBe('/allowed');
    expect(seen.query).toBe('by=policy');
    expect(seen.headers['x-policy']).toBe('checked');
    expect(seen.headers.authorization).toBe(`Bearer ${SECRET}`);
    const audit = await auditFor('/allow');
    const entry = (audit.request_transforms as { name: string; annotations?: Record<string, unknown> }[]).find((t) => t.name === 'policy-engine');
    expect(entry?.annotations).toMatchObject({ verdict: 'allow', policy: 'e2e-v1' });
    const sent = calls.find((c) => (c as TransformRequestRequest).request?.url === '/allow') as TransformRequestRequest;
    expect(sent.request.body?.toString()).toBe('payload');
  });

  it('answers a reject with the server\'s status and body; the upstream never sees it', async () => {
    const before = echo.requests.length;
    const { body, status: code } = await viaProxy('/deny');
    expect(code).toBe('451');
    expect(body).toBe('{"error":"denied by policy"}');
    expect(echo.requests.length).toBe(before);
    expect(await auditFor('/deny')).toMatchObject({ action: 'reject', rejected_by: 'policy-engine', status_code: 451 });
  });

  it('applies response changes', async () => {
    const { body, status: code } = await viaProxy('/response');
    expect(code).toBe('202');
    expect(body).toMatch(/^policy saw \d+ bytes$/);
  });

  it('fails with 502 when the policy server does not answer in time', async () => {
    const { status: code } = await viaProxy('/hang');
    expect(code).toBe('502');
    expect(await auditFor('/hang')).toMatchObject({ action: 'error', reason: 'grpc_deadline_exceeded', rejected_by: 'policy-engine' });
  });

  it('follows a host rewrite to an allowed host, without the credential scoped to the old host', async () => {
    const { body, status: code } = await viaProxy('/mirror');
    expect(code).toBe('200');
    const seen = JSON.parse(body) as { headers: Record<string, string> };
    expect(seen.headers.host).toBe(`mirror.example.test:${echo.port}`);
    expect(seen.headers.authorization).toBeUndefined();
    const audit = await auditFor('/mirror');
    expect(audit.host).toBe('api.example.test');
    expect((audit.request_transforms as { name: string }[]).map((t) => t.name)).toEqual(['allowlist', 'policy-engine', 'allowlist', 'secrets']);
  });

  it('refuses a host rewrite the allowlist does not allow (403), dialling nothing', async () => {
    const before = echo.requests.length;
    const { status: code } = await viaProxy('/elsewhere');
    expect(code).toBe('403');
    expect(echo.requests.length).toBe(before);
    expect(await auditFor('/elsewhere')).toMatchObject({ action: 'reject', rejected_by: 'allowlist' });
  });

  it('refuses a host rewrite to an address the upstream guard denies (403), never connecting to it', async () => {
    const { status: code } = await viaProxy('/guarded');
    expect(code).toBe('403');
    expect(deniedConnections).toBe(0);
    expect(await auditFor('/guarded')).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', reason: 'upstream_denied' });
  });

  it('never lets the secret reach the policy server or the proxy\'s output', () => {
    // What it checks was made by the curl requests above, skipped where curl is missing.
    requireCommand('curl');
    expect(calls.length).toBeGreaterThan(5);
    // The response calls carry the request as forwarded, credential included: redacted.
    expect(JSON.stringify(calls)).toContain('Bearer [redacted:');
    expect(JSON.stringify(calls)).not.toContain(SECRET);
    const output = proxy.stdout() + proxy.stderr();
    expect(output).toContain('"msg":"request"');
    expect(output).not.toContain(SECRET);
  });
});
