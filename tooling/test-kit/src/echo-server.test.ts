import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startEchoServer, type EchoRequestRecord, type EchoServer } from './index.js';

let echo: EchoServer;

beforeAll(async () => {
  echo = await startEchoServer();
});

afterAll(async () => {
  await echo.close();
});

describe('echo server', () => {
  it('answers with the request it received and records it', async () => {
    const res = await fetch(`${echo.url}/some/path?a=1&b=two`, {
      method: 'POST',
      headers: { 'X-Custom-Header': 'hello', 'content-type': 'text/plain' },
      body: 'payload text',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const seen = (await res.json()) as EchoRequestRecord;
    expect(seen).toMatchObject({ method: 'POST', url: '/some/path?a=1&b=two', path: '/some/path', query: 'a=1&b=two', body: 'payload text', bodyBytes: 12 });
    expect(seen.headers['x-custom-header']).toBe('hello');
    expect(seen.rawHeaders).toContain('X-Custom-Header');
    expect(echo.requests.at(-1)).toEqual(seen);
    expect(echo.url).toBe(`http://127.0.0.1:${echo.port}`);
    expect(echo.connections).toBeGreaterThan(0);
  });

  it('counts a large body without keeping it all', async () => {
    const size = 3 * 1024 * 1024;
    const res = await fetch(`${echo.url}/upload`, { method: 'PUT', body: Buffer.alloc(size, 0x62) });
    const seen = (await res.json()) as EchoRequestRecord;
    expect(seen.bodyBytes).toBe(size);
    expect(seen.body.length).toBe(1024 * 1024);
  });

  it.each([404, 503, 201])('answers /status/%i with that status', async (code) => {
    const res = await fetch(`${echo.url}/status/${code}`);
    expect(res.status).toBe(code);
    await res.arrayBuffer();
  });

  it('adds a Location header to 3xx statuses', async () => {
    const res = await fetch(`${echo.url}/status/302`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/redirected');
    await res.arrayBuffer();
  });

  it('streams /bytes/<n>', async () => {
    const res = await fetch(`${echo.url}/bytes/200000`);
    expect((await res.arrayBuffer()).byteLength).toBe(200000);
  });

  it('records a /delay request before answering it', async () => {
    const pending = fetch(`${echo.url}/delay/300`);
    const deadline = Date.now() + 5000;
    while (!echo.requests.some((r) => r.path === '/delay/300') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(echo.requests.some((r) => r.path === '/delay/300')).toBe(true);
    expect((await pending).status).toBe(200);
  });

  it('echoes WebSocket text and binary messages', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${echo.port}/socket`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const next = () => new Promise<{ data: Buffer; binary: boolean }>((resolve) => ws.once('message', (data: Buffer, binary) => resolve({ data, binary })));
    let reply = next();
    ws.send('hi there');
    expect(await reply).toEqual({ data: Buffer.from('hi there'), binary: false });
    reply = next();
    ws.send(Buffer.from([1, 2, 3]));
    expect(await reply).toEqual({ data: Buffer.from([1, 2, 3]), binary: true });
    ws.close();
    expect(echo.requests.at(-1)?.path).toBe('/socket');
  });
});

describe('gated SSE', () => {
  it('sends each next event only after /sse-ack', async () => {
    const res = await fetch(`${echo.url}/sse?events=3&gate=1`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const nextEvent = async (): Promise<string> => {
      while (!buffer.includes('\n\n')) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffer += decoder.decode(value, { stream: true });
      }
      const i = buffer.indexOf('\n\n');
      const event = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      return event;
    };
    const ack = async () => (await fetch(`${echo.url}/sse-ack`)).text();
    expect(await nextEvent()).toBe('data: 0');
    // Without an ack the next event must not come.
    const second = nextEvent();
    const early = await Promise.race([second.then(() => 'event'), new Promise((r) => setTimeout(() => r('waiting'), 200))]);
    expect(early).toBe('waiting');
    await ack();
    expect(await second).toBe('data: 1');
    await ack();
    expect(await nextEvent()).toBe('data: 2');
    expect((await reader.read()).done).toBe(true);
  });

  it('streams ungated events straight through', async () => {
    const res = await fetch(`${echo.url}/sse?events=4`);
    expect(await res.text()).toBe('data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n');
  });
});

describe.skipIf(spawnSync('openssl', ['version']).status !== 0)('HTTPS echo server', () => {
  it('serves the echo over TLS with the given certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'test-kit-tls-'));
    try {
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
      expect(made.status).toBe(0);
      const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
      const secure = await startEchoServer({ tls: { cert, key: readFileSync(join(dir, 'key.pem'), 'utf8') } });
      try {
        expect(secure.url).toBe(`https://127.0.0.1:${secure.port}`);
        const body = await new Promise<string>((resolve, reject) => {
          httpsRequest(`${secure.url}/tls?x=1`, { ca: cert }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
          }).on('error', reject).end();
        });
        expect((JSON.parse(body) as EchoRequestRecord).query).toBe('x=1');
      } finally {
        await secure.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
