import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { reject, rejectJson } from '@proxy/core';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { DEFAULT_DENY_CIDRS, startEngine, type TestEngine } from './support.js';

let echo: EchoServer;
let proxy: TestEngine;

beforeAll(async () => {
  echo = await startEchoServer();
  proxy = await startEngine({
    reverse: [
      { listen: '127.0.0.1:0', upstreamHost: `127.0.0.1:${echo.port}`, upstreamScheme: 'http', hostHeader: 'X-Upstream-Host' },
      { listen: '127.0.0.1:0', upstreamScheme: 'http', hostHeader: 'X-Upstream-Host' },
    ],
  });
});

afterEach(async () => {
  await proxy.use();
});

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
});

/** Opens a WebSocket, sends each message and collects the echoes, then closes. */
async function echoThrough(url: string, headers: Record<string, string>, messages: string[]): Promise<string[]> {
  const ws = new WebSocket(url, { headers });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
  const received: string[] = [];
  for (const message of messages) {
    const echoed = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString('utf8'))));
    ws.send(message);
    received.push(await echoed);
  }
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  return received;
}

/** Opens a WebSocket expected to be refused; resolves with the HTTP status and body. */
function refusedUpgrade(url: string, headers: Record<string, string>): Promise<{ status: number; body: string; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => reject(new Error('upgrade was not refused')));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, contentType: res.headers['content-type'] }));
    });
  });
}

describe('WebSocket upgrades', () => {
  it('echo through the forward listener (Host-header destination)', async () => {
    const replies = await echoThrough(`ws://127.0.0.1:${proxy.port()}/chat`, { Host: `127.0.0.1:${echo.port}` }, ['hello', 'second']);
    expect(replies).toEqual(['hello', 'second']);
    const audit = await proxy.audit((a) => a.path === '/chat');
    expect(audit).toMatchObject({ mode: 'http', action: 'allow', status_code: 101, host: '127.0.0.1' });
  });

  it('echo through the forward listener with an absolute-form upgrade request', async () => {
    const socket = connect({ host: '127.0.0.1', port: proxy.port() });
    const received: Buffer[] = [];
    const arrived = (test: (all: Buffer) => boolean): Promise<Buffer> =>
      new Promise((resolve) => {
        const check = (): void => {
          const all = Buffer.concat(received);
          if (test(all)) {
            socket.off('data', onData);
            resolve(all);
          }
        };
        const onData = (chunk: Buffer): void => {
          received.push(chunk);
          check();
        };
        socket.on('data', onData);
        check();
      });
    socket.write(
      [
        `GET http://127.0.0.1:${echo.port}/absolute-ws HTTP/1.1`,
        `Host: 127.0.0.1:${echo.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
    const head = (await arrived((all) => all.includes('\r\n\r\n'))).toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toContain('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    // One masked text frame "hi"; the echo comes back unmasked.
    const headLength = head.indexOf('\r\n\r\n') + 4;
    const mask = Buffer.from([1, 2, 3, 4]);
    const payload = Buffer.from('hi').map((b, i) => b ^ mask[i % 4]!);
    socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | 2]), mask, payload]));
    const all = await arrived((data) => data.length >= headLength + 4);
    expect(all.subarray(headLength, headLength + 4)).toEqual(Buffer.from([0x81, 2, 0x68, 0x69]));
    socket.destroy();
    const audit = await proxy.audit((a) => a.path === '/absolute-ws');
    expect(audit).toMatchObject({ status_code: 101, mode: 'http' });
  });

  it('echo through a pinned reverse listener', async () => {
    expect(await echoThrough(`ws://127.0.0.1:${proxy.port('reverse', 0)}/pinned-ws`, {}, ['ping'])).toEqual(['ping']);
  });

  it('echo through a header-selected reverse listener, without the selection header upstream', async () => {
    const replies = await echoThrough(`ws://127.0.0.1:${proxy.port('reverse', 1)}/selected-ws`, { 'X-Upstream-Host': `127.0.0.1:${echo.port}` }, ['x']);
    expect(replies).toEqual(['x']);
    const upgrade = echo.requests.find((r) => r.path === '/selected-ws')!;
    expect(upgrade.headers['x-upstream-host']).toBeUndefined();
    expect(upgrade.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(upgrade.headers.upgrade).toBe('websocket');
  });

  it('run the request pipeline: a transform changes the upgrade request', async () => {
    await proxy.use({ name: 'tag', transform: { onRequest: (req) => req.headers.set('X-Tagged', 'by-transform') } });
    await echoThrough(`ws://127.0.0.1:${proxy.port()}/tagged-ws`, { Host: `127.0.0.1:${echo.port}` }, ['a']);
    expect(echo.requests.find((r) => r.path === '/tagged-ws')!.headers['x-tagged']).toBe('by-transform');
  });

  it('answer a pipeline reject as an HTTP response on the socket, without contacting the upstream', async () => {
    await proxy.use({ name: 'guard', transform: { onRequest: () => reject(403, 'not_allowlisted') } });
    const before = echo.connections;
    const refused = await refusedUpgrade(`ws://127.0.0.1:${proxy.port()}/blocked-ws`, { Host: `127.0.0.1:${echo.port}` });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('not_allowlisted');
    expect(echo.connections).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/blocked-ws');
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'guard', status_code: 403 });
  });

  it('answer a JSON reject on the socket with its body and content type', async () => {
    await proxy.use({ name: 'signer', transform: { onRequest: () => rejectJson(400, 'chunked_body_not_allowed', { error: 'signer', reason: 'chunked_body_not_allowed' }) } });
    const refused = await refusedUpgrade(`ws://127.0.0.1:${proxy.port()}/json-ws`, { Host: `127.0.0.1:${echo.port}` });
    expect(refused).toEqual({ status: 400, contentType: 'application/json; charset=utf-8', body: '{"error":"signer","reason":"chunked_body_not_allowed"}' });
  });

  it('refuse a missing selection header with 400', async () => {
    const refused = await refusedUpgrade(`ws://127.0.0.1:${proxy.port('reverse', 1)}/no-target`, {});
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('X-Upstream-Host');
  });

  it('dial through the guard: a denied upstream is refused with 403', async () => {
    const guarded = await startEngine({ upstreamDenyCidrs: DEFAULT_DENY_CIDRS });
    try {
      const before = echo.connections;
      const refused = await refusedUpgrade(`ws://127.0.0.1:${guarded.port()}/denied-ws`, { Host: `127.0.0.1:${echo.port}` });
      expect(refused.status).toBe(403);
      expect(echo.connections).toBe(before);
      const audit = await guarded.audit((a) => a.path === '/denied-ws');
      expect(audit).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', status_code: 403 });
    } finally {
      await guarded.close();
    }
  });
});
