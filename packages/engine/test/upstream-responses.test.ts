import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { send, startEngine, type TestEngine } from './support.js';

// An upstream with behaviour the echo server does not have: exact response header casing and
// repeated fields, a body cut off halfway, and a refused WebSocket upgrade.
let upstream: Server;
let port: number;
let proxy: TestEngine;

function respond(req: IncomingMessage, res: ServerResponse): void {
  switch (req.url) {
    case '/cookies':
      res.writeHead(200, ['X-Custom-Case', 'Kept', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Connection', 'close, X-Hop', 'X-Hop', 'gone', 'Content-Length', '2']);
      res.end('ok');
      return;
    case '/cut-off':
      res.writeHead(200, { 'content-length': '1000' });
      res.write('only part of it');
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    default:
      res.writeHead(404).end();
  }
}

beforeAll(async () => {
  upstream = createServer(respond);
  upstream.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nno ws\n');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  port = (upstream.address() as AddressInfo).port;
  proxy = await startEngine();
});

afterAll(async () => {
  await proxy?.close();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

describe('upstream responses', () => {
  it('keep their header casing and repeated fields, without hop-by-hop fields', async () => {
    const r = await send(proxy.port(), { target: `http://127.0.0.1:${port}/cookies` });
    expect(r.status).toBe(200);
    expect(r.rawHeaders).toContain('X-Custom-Case');
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers['x-hop']).toBeUndefined();
    expect(r.body).toBe('ok');
  });

  it('that break off mid-body end the client response and are audited as failed', async () => {
    const outcome = await new Promise<string>((resolve) => {
      void send(proxy.port(), { target: `http://127.0.0.1:${port}/cut-off` }).then(
        () => resolve('completed'),
        () => resolve('aborted'),
      );
    });
    expect(outcome).toBe('aborted');
    const audit = await proxy.audit((a) => a.path === '/cut-off');
    expect(audit).toMatchObject({ status_code: 200, action: 'error', reason: 'upstream_aborted' });
  });

  it('that refuse a WebSocket upgrade are relayed to the client', async () => {
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${proxy.port()}/ws`, { headers: { Host: `127.0.0.1:${port}` } });
      ws.once('open', () => reject(new Error('upgrade was not refused')));
      ws.once('error', () => undefined);
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(refused).toEqual({ status: 403, body: 'no ws\n' });
    const audit = await proxy.audit((a) => a.path === '/ws');
    expect(audit.status_code).toBe(403);
  });
});
