import { request as httpRequest } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { echoed, startEngine, type TestEngine } from './support.js';

let echo: EchoServer;
let proxy: TestEngine;

beforeAll(async () => {
  echo = await startEchoServer();
  proxy = await startEngine();
});

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
});

describe('streams stay streams', () => {
  it('delivers SSE events one by one while the upstream is still sending', async () => {
    const events: string[] = [];
    let contentEncoding: string | undefined;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: proxy.port(),
          path: `http://127.0.0.1:${echo.port}/sse?events=3&gate=1`,
          headers: { host: `127.0.0.1:${echo.port}`, 'accept-encoding': 'gzip' },
          agent: false,
        },
        (res) => {
          contentEncoding = res.headers['content-encoding'];
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffer += chunk;
            for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
              events.push(buffer.slice(0, i));
              buffer = buffer.slice(i + 2);
              // The upstream sends the next event only after this acknowledgement: had the
              // proxy held the stream back, no further event would come and the test would hang.
              if (events.length < 3) void fetch(`http://127.0.0.1:${echo.port}/sse-ack`).then((r) => r.text());
            }
          });
          res.on('end', () => resolve());
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(events).toEqual(['data: 0', 'data: 1', 'data: 2']);
    expect(contentEncoding).toBeUndefined();
  });

  it('streams a 50 MiB upload without buffering it (RSS growth under 64 MiB)', async () => {
    const total = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    // Client, proxy and upstream share this process: every socket read allocates a fresh
    // buffer, and left to itself V8 lets ~100 MiB of such garbage pile up before collecting.
    // Collecting as we sample makes RSS measure what is held, which is what buffering would grow.
    const collect = garbageCollector();
    collect();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
      collect();
    }, 10);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: proxy.port(),
            method: 'PUT',
            path: `http://127.0.0.1:${echo.port}/upload`,
            headers: { host: `127.0.0.1:${echo.port}`, 'content-length': total },
            agent: false,
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve(text));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        let sent = 0;
        const pump = (): void => {
          while (sent < total) {
            sent += chunk.length;
            if (!req.write(chunk)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(echoed(body).bodyBytes).toBe(total);
    } finally {
      clearInterval(sampler);
    }
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('streams a large download to the client', async () => {
    const size = 20 * 1024 * 1024;
    const received = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: proxy.port(), path: `http://127.0.0.1:${echo.port}/bytes/${size}`, headers: { host: `127.0.0.1:${echo.port}` }, agent: false },
        (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () => resolve(bytes));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(received).toBe(size);
  });

  it('cancels the upstream request when the client goes away, and still writes the audit record', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: proxy.port(), path: `http://127.0.0.1:${echo.port}/bytes/${200 * 1024 * 1024}`, headers: { host: `127.0.0.1:${echo.port}` }, agent: false },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      req.end();
    });
    const audit = await proxy.audit((a) => a.path === `/bytes/${200 * 1024 * 1024}`);
    expect(audit).toMatchObject({ status_code: 200, action: 'error', reason: 'client_closed' });
  });
});

/** V8's `gc()`, exposed at run time (the test runner does not pass `--expose-gc`). */
function garbageCollector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
