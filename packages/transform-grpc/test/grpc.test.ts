import { spawnSync } from 'node:child_process';
import { createServer, connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, SecretRedactor } from '@proxy/core';
import { runTransform, validateTransformConfig } from '@proxy/core/testing';
import { createTestPki, type TestPki } from '@proxy/test-kit';
import { canonicalHeaderKey, grpcTransform, type TransformRequestRequest } from '../src/index.js';
import { startPolicyServer, type PolicyServer } from './policy-server.js';

let server: PolicyServer;

beforeAll(async () => {
  server = await startPolicyServer();
});

afterAll(async () => {
  await server?.close();
});

/** The config of a plaintext instance named `policy-engine` calling the shared server. */
function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'policy-engine', target: server.target, ...extra };
}

/** The last request call the server received. */
function lastCall(policy: PolicyServer = server): TransformRequestRequest {
  return policy.requests.at(-1)!;
}

describe('grpc: continue', () => {
  it('sends the request (canonical header names, values in order, no body by default) and forwards it unchanged', async () => {
    server.handlers = {};
    const { decision, request, audit } = await runTransform(
      grpcTransform,
      config(),
      {
        method: 'POST',
        scheme: 'https',
        host: 'api.example.com',
        port: 8443,
        path: '/v1/items',
        query: 'page=2',
        sni: 'api.example.com',
        tunnel: { protocol: 'connect', target: 'api.example.com:8443', decision: 'allow' },
        headers: [
          ['x-trace', 'a'],
          ['X-Trace', 'b'],
          ['content-type', 'application/json'],
        ],
        body: '{"hello":"world"}',
        clientAddress: '10.1.2.3',
      },
    );
    expect(decision.action).toBe('continue');
    const call = lastCall();
    expect(call.context).toEqual({ sni: 'api.example.com', tunnel: { target: 'api.example.com:8443' } });
    expect(call.request).toMatchObject({ method: 'POST', url: '/v1/items?page=2', host: 'api.example.com:8443', remote_addr: '10.1.2.3' });
    expect(call.request.body).toBeUndefined();
    expect(call.request.headers).toEqual({
      'X-Trace': { values: ['a', 'b'] },
      'Content-Type': { values: ['application/json'] },
      'Content-Length': { values: ['17'] },
    });
    expect(request.headers.getAll('x-trace')).toEqual(['a', 'b']);
    expect(audit.request_transforms[0]).toMatchObject({ name: 'policy-engine', action: 'allow' });
  });

  it('treats UNSPECIFIED as continue and skips requests outside its rules', async () => {
    server.handlers = { request: () => ({}) };
    expect((await runTransform(grpcTransform, config(), { host: 'api.example.com' })).decision.action).toBe('continue');
    const before = server.requests.length;
    const outside = await runTransform(grpcTransform, config({ rules: [{ host: 'api.example.com' }] }), { host: 'other.example.com' });
    expect(outside.decision.action).toBe('continue');
    expect(server.requests.length).toBe(before);
  });

  it('writes the server\'s annotations to the audit record under the instance name', async () => {
    server.handlers = { request: () => ({ action: 'TRANSFORM_ACTION_CONTINUE', annotations: { verdict: 'ok', policy: 'v7' } }) };
    const { audit } = await runTransform(grpcTransform, config(), {});
    expect(audit.request_transforms[0]).toEqual(expect.objectContaining({ name: 'policy-engine', annotations: { verdict: 'ok', policy: 'v7' } }));
  });
});

describe('grpc: reject', () => {
  it('answers with the server\'s status, body and content type', async () => {
    server.handlers = {
      request: () => ({
        action: 'TRANSFORM_ACTION_REJECT',
        response: { status_code: 451, headers: { 'Content-Type': { values: ['application/json'] } }, body: Buffer.from('{"error":"blocked"}') },
        annotations: { rule: 'no-uploads' },
      }),
    };
    const { decision, audit } = await runTransform(grpcTransform, config(), { method: 'PUT', path: '/upload' });
    expect(decision).toEqual({ action: 'reject', status: 451, reason: 'grpc_rejected', message: '{"error":"blocked"}', contentType: 'application/json' });
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'policy-engine', reason: 'grpc_rejected' });
    expect(audit.request_transforms[0]!.annotations).toMatchObject({ rule: 'no-uploads' });
  });

  it('answers 403 without a response, or with status 0', async () => {
    server.handlers = { request: () => ({ action: 'TRANSFORM_ACTION_REJECT' }) };
    expect((await runTransform(grpcTransform, config(), {})).decision).toMatchObject({ action: 'reject', status: 403, reason: 'grpc_rejected' });
    server.handlers = { request: () => ({ action: 'TRANSFORM_ACTION_REJECT', response: { status_code: 0, body: Buffer.from('no') } }) };
    expect((await runTransform(grpcTransform, config(), {})).decision).toMatchObject({ status: 403, message: 'no' });
  });
});

describe('grpc: modified request', () => {
  it('sends the body when asked and applies method, url, headers and body', async () => {
    server.handlers = {
      request: () => ({
        action: 'TRANSFORM_ACTION_CONTINUE',
        modified_request: {
          method: 'PATCH',
          url: '/v2/items?page=3&x=%20y',
          headers: { 'X-Policy': { values: ['checked', 'twice'] }, 'Content-Type': { values: ['text/plain'] }, 'Content-Length': { values: ['999'] } },
          body: Buffer.from('rewritten body'),
        },
      }),
    };
    const { request, forwardedBody } = await runTransform(grpcTransform, config({ send_request_body: true }), {
      method: 'POST',
      path: '/v1/items',
      headers: { 'content-type': 'application/json', 'x-drop': 'me' },
      body: '{"a":1}',
    });
    expect(lastCall().request.body?.toString()).toBe('{"a":1}');
    expect(request.method).toBe('PATCH');
    expect(request.path).toBe('/v2/items');
    expect(request.query).toBe('page=3&x=%20y');
    expect(request.headers.getAll('x-policy')).toEqual(['checked', 'twice']);
    expect(request.headers.get('content-type')).toBe('text/plain');
    expect(request.headers.has('x-drop')).toBe(false);
    // Framing and Host stay the proxy's: the length is the new body's, not the server's 999.
    expect(request.headers.get('content-length')).toBe('14');
    expect(request.headers.get('host')).toBe('example.com');
    expect(forwardedBody.toString()).toBe('rewritten body');
  });

  it('applies an empty body the server sends (present on the wire) and leaves fields it left empty', async () => {
    server.handlers = { request: () => ({ modified_request: { body: Buffer.alloc(0) } }) };
    const { request, forwardedBody } = await runTransform(grpcTransform, config(), { method: 'POST', path: '/keep', headers: { 'x-keep': '1' }, body: 'gone' });
    expect(forwardedBody.length).toBe(0);
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/keep');
    expect(request.headers.get('x-keep')).toBe('1');
  });

  it('fails closed (502 grpc_invalid_response) on a change it cannot apply', async () => {
    for (const modified of [{ url: 'https://elsewhere.example/x' }, { headers: { 'Bad Name': { values: ['x'] } } }, { headers: { 'X-A': { values: ['a\r\nInjected: 1'] } } }, { host: 'a:b:c' }]) {
      server.handlers = { request: () => ({ modified_request: modified }) };
      const { decision, audit } = await runTransform(grpcTransform, config(), {});
      expect(decision).toMatchObject({ action: 'reject', status: 502, reason: 'grpc_invalid_response' });
      expect(audit).toMatchObject({ action: 'error', rejected_by: 'policy-engine' });
    }
  });

  it('re-targets the request when the server changes the host, and not when it echoes it', async () => {
    server.handlers = { request: (call) => ({ modified_request: { host: call.request.host! } }) };
    const same = await runTransform(grpcTransform, config(), { host: 'api.example.com', port: 8080 });
    expect(same.request.host).toBe('api.example.com');
    expect(same.audit.request_transforms[0]!.annotations).toBeUndefined();

    server.handlers = { request: () => ({ modified_request: { host: 'mirror.example.com:9443' } }) };
    const moved = await runTransform(grpcTransform, config(), { host: 'api.example.com' });
    expect(moved.decision.action).toBe('continue');
    expect(moved.request.host).toBe('mirror.example.com');
    expect(moved.request.port).toBe(9443);
    expect(moved.request.headers.get('host')).toBe('mirror.example.com:9443');
    expect(moved.audit.request_transforms[0]!.annotations).toMatchObject({ retarget: 'mirror.example.com:9443' });
  });
});

describe('grpc: responses', () => {
  it('sends the response (with its body when asked) and applies status, headers and body', async () => {
    server.handlers = {
      response: (call) => ({
        action: 'TRANSFORM_ACTION_CONTINUE',
        modified_response: { status_code: 203, headers: { 'X-Filtered': { values: ['yes'] } }, body: Buffer.from(call.response.body!.toString().toUpperCase()) },
        annotations: { filtered: 'true' },
      }),
    };
    const { response, responseDecision, audit } = await runTransform(grpcTransform, config({ send_response_body: true }), { path: '/r' }, {
      response: { status: 200, headers: { 'content-type': 'text/plain', 'x-upstream': '1' }, body: 'hello' },
    });
    const call = server.responses.at(-1)!;
    expect(call.request.url).toBe('/r');
    expect(call.response).toMatchObject({ status_code: 200, headers: { 'Content-Type': { values: ['text/plain'] } } });
    expect(responseDecision?.action).toBe('continue');
    expect(response!.status).toBe(203);
    expect(response!.headers.get('x-filtered')).toBe('yes');
    expect(response!.headers.has('x-upstream')).toBe(false);
    expect(response!.body.bytes?.toString()).toBe('HELLO');
    expect(audit.response_transforms[0]).toMatchObject({ name: 'policy-engine', annotations: { filtered: 'true' } });
  });

  it('replaces the response with the server\'s on REJECT', async () => {
    server.handlers = { response: () => ({ action: 'TRANSFORM_ACTION_REJECT', modified_response: { status_code: 502, body: Buffer.from('response withheld') } }) };
    const { responseDecision, audit } = await runTransform(grpcTransform, config(), {}, { response: { status: 200, body: 'secret-ish data' } });
    expect(responseDecision).toMatchObject({ action: 'reject', status: 502, reason: 'grpc_rejected', message: 'response withheld' });
    expect(server.responses.at(-1)!.response.body).toBeUndefined();
    expect(audit.rejected_by).toBe('policy-engine');
  });
});

describe('grpc: secrets never reach the policy server', () => {
  it('redacts registered secrets from what it sends, and keeps the real value where the server echoes the redacted one', async () => {
    const redactor = new SecretRedactor();
    redactor.add('sk-live-1234567890', 'OPENAI_KEY');
    let sent: TransformRequestRequest | undefined;
    server.handlers = {
      request: (call) => {
        sent = call;
        return { modified_request: { headers: { ...call.request.headers, 'X-Added': { values: ['1'] } }, url: call.request.url!, body: call.request.body! } };
      },
    };
    const { request, forwardedBody } = await runTransform(
      grpcTransform,
      config({ send_request_body: true }),
      { method: 'POST', path: '/v1/x', query: 'key=sk-live-1234567890', headers: { authorization: 'Bearer sk-live-1234567890' }, body: '{"key":"sk-live-1234567890"}' },
      { transformEnv: { redactor } },
    );
    const wire = JSON.stringify(sent);
    expect(wire).not.toContain('sk-live-1234567890');
    expect(sent!.request.headers!['Authorization']!.values).toEqual(['Bearer [redacted:OPENAI_KEY]']);
    expect(request.headers.get('authorization')).toBe('Bearer sk-live-1234567890');
    expect(request.query).toBe('key=sk-live-1234567890');
    expect(forwardedBody.toString()).toBe('{"key":"sk-live-1234567890"}');
    expect(request.headers.get('x-added')).toBe('1');
  });
});

describe('grpc: failures fail closed', () => {
  it('answers 502 when the server does not answer within the timeout', async () => {
    server.handlers = { request: () => 'hang' };
    const started = Date.now();
    const { decision, audit, logs } = await runTransform(grpcTransform, config({ timeout: '200ms' }), {});
    expect(Date.now() - started).toBeLessThan(3000);
    expect(decision).toMatchObject({ action: 'reject', status: 502, reason: 'grpc_deadline_exceeded' });
    expect(audit).toMatchObject({ action: 'error', reason: 'grpc_deadline_exceeded', rejected_by: 'policy-engine' });
    expect(logs.some((l) => String(l.msg).includes('DEADLINE_EXCEEDED'))).toBe(true);
  });

  it('answers 502 on a gRPC error and when the server is unreachable', async () => {
    server.handlers = { request: () => 'fail' };
    expect((await runTransform(grpcTransform, config(), {})).decision).toMatchObject({ status: 502, reason: 'grpc_error' });
    const down = await startPolicyServer();
    const target = down.target;
    await down.close();
    expect((await runTransform(grpcTransform, { name: 'gone', target, timeout: '2s' }, {})).decision).toMatchObject({ status: 502, reason: 'grpc_error' });
  });
});

describe('grpc: connection', () => {
  it('connects while it is created, before any request (so a reload swaps in a connected channel)', async () => {
    // A TCP relay in front of the policy server counts the connections made to it.
    const [host, port] = [server.target.slice(0, server.target.lastIndexOf(':')), Number(server.target.slice(server.target.lastIndexOf(':') + 1))];
    let connections = 0;
    const sockets = new Set<Socket>();
    const relay = createServer((client) => {
      connections += 1;
      const upstream = connectTcp(port, host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const target = `127.0.0.1:${(relay.address() as AddressInfo).port}`;
      // Its rules match no request here, so it never calls the server: any connection is the one made at create.
      const calls = server.requests.length;
      const { decision } = await runTransform(grpcTransform, { name: 'relayed', target, rules: [{ host: 'elsewhere.example' }] }, { host: 'api.example.com' });
      expect(decision.action).toBe('continue');
      expect(server.requests.length).toBe(calls);
      expect(connections).toBe(1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => relay.close(() => r()));
    }
  });

  it('warns, and still builds, when the server is not reachable within the timeout', async () => {
    const down = await startPolicyServer();
    const target = down.target;
    await down.close();
    const started = Date.now();
    const { decision, logs } = await runTransform(grpcTransform, { name: 'gone', target, timeout: '300ms' }, {});
    expect(Date.now() - started).toBeLessThan(3000);
    expect(decision).toMatchObject({ status: 502, reason: 'grpc_error' });
    expect(logs.some((l) => l.level === 'warn' && String(l.msg).includes('not reachable within 300ms'))).toBe(true);
  });
});

describe('grpc: config', () => {
  it('requires name and target, and cert with key', () => {
    expect(validateTransformConfig(grpcTransform, {}).map((i) => i.path).sort()).toEqual(['name', 'target']);
    expect(validateTransformConfig(grpcTransform, { name: 'a', target: 'x:1', tls: { enabled: true, cert: 'c.pem' } })).not.toHaveLength(0);
    expect(validateTransformConfig(grpcTransform, { name: 'a', target: 'x:1', timeout: 'soon' })).not.toHaveLength(0);
    expect(validateTransformConfig(grpcTransform, { name: 'a', target: 'x:1', tls: { enabled: true }, rules: [{ host: 'api.example.com' }] })).toEqual([]);
  });

  it('refuses unreadable TLS files at create time, naming the field', async () => {
    const failure = await runTransform(grpcTransform, config({ tls: { enabled: true, ca_cert: '/nonexistent/ca.pem' } }), {}).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: ErrorCodes.TRANSFORM_CREATE_FAILED });
    expect(String((failure as Error).message)).toContain('tls.ca_cert');
  });

  it('warns that TLS files are ignored while tls.enabled is false (plaintext, as iron-proxy)', async () => {
    server.handlers = {};
    const { decision, logs } = await runTransform(grpcTransform, config({ tls: { enabled: false, ca_cert: '/nonexistent/ca.pem' } }), {});
    expect(decision.action).toBe('continue');
    expect(logs.some((l) => l.level === 'warn' && String(l.msg).includes('tls.enabled is false'))).toBe(true);
  });

  it('writes header names as Go does', () => {
    expect(canonicalHeaderKey('x-api-KEY')).toBe('X-Api-Key');
    expect(canonicalHeaderKey('content-type')).toBe('Content-Type');
  });
});

describe.skipIf(spawnSync('openssl', ['version']).status !== 0)('grpc: TLS to the policy server', () => {
  let pki: TestPki;
  let other: TestPki;
  let tlsServer: PolicyServer;
  let mutualServer: PolicyServer;

  beforeAll(async () => {
    [pki, other] = await Promise.all([createTestPki({ names: ['127.0.0.1', 'localhost'], clientName: 'proxy' }), createTestPki({ names: ['127.0.0.1'], clientName: 'stranger' })]);
    const verdict = { request: () => ({ action: 'TRANSFORM_ACTION_REJECT' as const, response: { status_code: 418 } }) };
    tlsServer = await startPolicyServer(verdict, { cert: pki.cert, key: pki.key });
    mutualServer = await startPolicyServer(verdict, { cert: pki.cert, key: pki.key, clientCa: pki.caCert });
  });

  afterAll(async () => {
    await Promise.all([tlsServer?.close(), mutualServer?.close()]);
    await Promise.all([pki?.remove(), other?.remove()]);
  });

  it('talks TLS, verifying the server against ca_cert (relative to the config directory)', async () => {
    const { decision } = await runTransform(grpcTransform, { name: 'tls', target: tlsServer.target, tls: { enabled: true, ca_cert: 'ca.crt' } }, {}, { transformEnv: { configDir: pki.dir } });
    expect(decision).toMatchObject({ status: 418 });
  });

  it('refuses a server whose certificate another CA signed', async () => {
    const { decision } = await runTransform(grpcTransform, { name: 'tls', target: tlsServer.target, timeout: '2s', tls: { enabled: true, ca_cert: other.caFile } }, {});
    expect(decision).toMatchObject({ status: 502, reason: 'grpc_error' });
  });

  it('presents its client certificate for mutual TLS, and is refused without one', async () => {
    const tls = { enabled: true, ca_cert: pki.caFile, cert: pki.client!.certFile, key: pki.client!.keyFile };
    expect((await runTransform(grpcTransform, { name: 'mtls', target: mutualServer.target, tls }, {})).decision).toMatchObject({ status: 418 });
    const without = await runTransform(grpcTransform, { name: 'mtls', target: mutualServer.target, timeout: '2s', tls: { enabled: true, ca_cert: pki.caFile } }, {});
    expect(without.decision).toMatchObject({ status: 502, reason: 'grpc_error' });
    const stranger = { enabled: true, ca_cert: pki.caFile, cert: other.client!.certFile, key: other.client!.keyFile };
    expect((await runTransform(grpcTransform, { name: 'mtls', target: mutualServer.target, timeout: '2s', tls: stranger }, {})).decision).toMatchObject({ status: 502 });
  });
});
