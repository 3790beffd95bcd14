import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { startEngine, type TestEngine } from './support.js';
import { createTlsWorld, tlsThroughTunnel, type TlsWorld } from './tls-support.js';

let world: TlsWorld;
let secure: EchoServer;
let dns: DnsTestServer;
let proxy: TestEngine;

beforeAll(async () => {
  world = await createTlsWorld();
  secure = await startEchoServer({ tls: world.upstreamCert });
  dns = await startDnsServer({ records: { 'upstream.test': { A: ['127.0.0.1'] } } });
  proxy = await startEngine({
    httpListen: undefined,
    tunnelListen: '127.0.0.1:0',
    certificates: world.leaves,
    upstreamCa: world.upstreamCa.cert,
    upstreamResolver: dns.resolver,
    upstreamDenyCidrs: [],
  });
});

afterAll(async () => {
  await proxy?.close();
  await Promise.all([secure?.close(), dns?.close()]);
  await world?.close();
});

const target = (): string => `upstream.test:${secure.port}`;
const tunnelled = (): Promise<Socket> => tlsThroughTunnel(proxy.port('tunnel'), target(), { servername: 'upstream.test', ca: world.proxyCa.cert });

describe('streams through intercepted tunnels', () => {
  it('proxies wss:// through a CONNECT tunnel', async () => {
    const socket = await tunnelled();
    const ws = new WebSocket(`wss://${target()}/tunnel-chat`, { createConnection: () => socket });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const replies: string[] = [];
    for (const message of ['first', 'second']) {
      const reply = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString('utf8'))));
      ws.send(message);
      replies.push(await reply);
    }
    expect(replies).toEqual(['first', 'second']);
    ws.close();
    const audit = await proxy.audit((a) => a.path === '/tunnel-chat');
    expect(audit).toMatchObject({ mode: 'mitm', status_code: 101, tunnel: { protocol: 'connect', decision: 'allow' } });
  });

  it('delivers SSE events one by one through a tunnel', async () => {
    const socket = await tunnelled();
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ path: '/sse?events=3&gate=1', headers: { host: target() }, createConnection: () => socket }, (res) => {
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
            events.push(buffer.slice(0, i));
            buffer = buffer.slice(i + 2);
            // The upstream sends the next event only once acknowledged: a proxy holding the stream back would hang here.
            if (events.length < 3) acknowledge();
          }
        });
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(events).toEqual(['data: 0', 'data: 1', 'data: 2']);
  });
});

/** Lets the gated SSE stream of the echo upstream send its next event. */
function acknowledge(): void {
  httpsRequest({ host: '127.0.0.1', port: secure.port, path: '/sse-ack', ca: world.upstreamCa.cert, servername: 'upstream.test' }, (res) => res.resume()).end();
}
