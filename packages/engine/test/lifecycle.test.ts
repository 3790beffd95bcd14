import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ErrorCodes } from '@proxy/core';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { createEngine, type EngineOptions } from '../src/index.js';
import { curl, RecordingLogger, send, startEngine } from './support.js';

let echo: EchoServer;

beforeAll(async () => {
  echo = await startEchoServer();
});

afterAll(async () => {
  await echo?.close();
});

const base: EngineOptions = {
  logger: new RecordingLogger(),
  onAudit: () => undefined,
  maxRequestBodyBytes: 1024,
  maxResponseBodyBytes: 0,
  upstreamResponseHeaderTimeoutMs: 5000,
  upstreamDenyCidrs: [],
};

const hasIpv6Loopback = Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6' && i.internal));

describe('listeners', () => {
  it('binds every interface for ":port"', async () => {
    const proxy = await startEngine({ httpListen: ':0' });
    try {
      expect(['::', '0.0.0.0']).toContain(proxy.addresses[0]!.address);
      expect((await send(proxy.port(), { target: `http://127.0.0.1:${echo.port}/any` })).status).toBe(200);
    } finally {
      await proxy.close();
    }
  });

  it.runIf(hasIpv6Loopback)('binds an IPv6 address in brackets', async () => {
    const proxy = await startEngine({ httpListen: '[::1]:0' });
    try {
      expect(proxy.addresses[0]).toMatchObject({ kind: 'http', address: '::1' });
      const r = await curl(['-g', '-x', `http://[::1]:${proxy.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${echo.port}/v6`]);
      expect(r.stdout).toBe('200');
      const audit = await proxy.audit((a) => a.path === '/v6');
      expect(audit.remote_addr).toBe('::1');
    } finally {
      await proxy.close();
    }
  });

  it.each(['8080', 'localhost', '1.2.3.4:99999', '[not-v6]:80', 'a:b:80'])('rejects the listen address %s at creation', (listen) => {
    expect(() => createEngine({ ...base, httpListen: listen })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
  });

  it('rejects an invalid pinned upstream at creation', () => {
    const reverse = [{ listen: '127.0.0.1:0', upstreamHost: 'bad host:x', upstreamScheme: 'http' as const, hostHeader: 'X-Upstream-Host' }];
    expect(() => createEngine({ ...base, reverse })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
  });

  it('closes the listeners already open when one cannot bind', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    const engine = createEngine({
      ...base,
      httpListen: '127.0.0.1:0',
      reverse: [{ listen: `127.0.0.1:${port}`, upstreamScheme: 'http', hostHeader: 'X-Upstream-Host' }],
    });
    try {
      await expect(engine.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});

describe('close(graceMs)', () => {
  it('stops accepting, lets the in-flight request finish, then resolves', async () => {
    const proxy = await startEngine();
    const port = proxy.port();
    const inFlight = send(port, { target: `http://127.0.0.1:${echo.port}/delay/400` });
    await waitFor(() => echo.requests.some((r) => r.path === '/delay/400'));
    const closed = proxy.close(5000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const late = await curl(['-x', `http://127.0.0.1:${port}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${echo.port}/late`]);
    expect(late.stdout).toBe('000');
    expect((await inFlight).status).toBe(200);
    await closed;
    expect(proxy.audits.map((a) => a.path)).toEqual(['/delay/400']);
  });

  it('closes a kept-alive connection once its response is done', async () => {
    const proxy = await startEngine();
    const agent = new HttpAgent({ keepAlive: true });
    try {
      const first = new Promise<{ connection: string | undefined }>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port: proxy.port(), path: `http://127.0.0.1:${echo.port}/delay/300`, headers: { host: `127.0.0.1:${echo.port}` }, agent },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ connection: res.headers.connection }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      await waitFor(() => echo.requests.some((r) => r.path === '/delay/300'));
      const closed = proxy.close(5000);
      expect((await first).connection).toBe('close');
      await closed;
    } finally {
      agent.destroy();
    }
  });

  it('ends what is still running once the grace period is over, with an audit record', async () => {
    const proxy = await startEngine();
    const stream = new Promise<string>((resolve) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: proxy.port(), path: `http://127.0.0.1:${echo.port}/sse?events=2&gate=1`, headers: { host: `127.0.0.1:${echo.port}` }, agent: false },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => resolve('ended'));
          res.on('error', () => resolve('aborted'));
          res.on('close', () => resolve('closed'));
        },
      );
      req.on('error', () => resolve('error'));
      req.end();
    });
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port()}/tunnel`, { headers: { Host: `127.0.0.1:${echo.port}` } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const wsClosed = new Promise((resolve) => ws.once('close', resolve));
    await waitFor(() => proxy.audits.some((a) => a.path === '/tunnel'));
    await waitFor(() => echo.requests.some((r) => r.path === '/sse'));
    await proxy.close(100);
    expect(await stream).not.toBe('ended');
    await wsClosed;
    const audit = await proxy.audit((a) => a.path === '/sse');
    expect(audit.status_code).toBe(200);
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
