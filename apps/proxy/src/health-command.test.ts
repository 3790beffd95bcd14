import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from './command-line.js';
import { checkHealth, DEFAULT_HEALTH_URL } from './health-command.js';

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/healthz') res.writeHead(200).end('ok\n');
    else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 2_000);
    else if (req.url === '/moved') res.writeHead(302, { location: '/healthz' }).end();
    else res.writeHead(503).end('draining\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((r) => server.close(r)));

describe('proxy health', () => {
  it('parses --url, defaulting to the metrics listener, and refuses what is not an http(s) URL', () => {
    expect(parseCommandLine(['health'])).toEqual({ kind: 'health', url: DEFAULT_HEALTH_URL });
    expect(parseCommandLine(['health', '--url', 'http://10.0.0.1:8081/healthz'])).toEqual({ kind: 'health', url: 'http://10.0.0.1:8081/healthz' });
    expect(parseCommandLine(['health', '--url', 'file:///etc/passwd'])).toMatchObject({ kind: 'error', message: expect.stringContaining('--url must be an http(s) URL') });
    expect(parseCommandLine(['health', '--bogus'])).toMatchObject({ kind: 'error' });
  });

  it('is healthy on a 2xx answer only', async () => {
    expect(await checkHealth(`${base}/healthz`)).toEqual({ code: 0, line: `${base}/healthz: 200` });
    expect(await checkHealth(`${base}/other`)).toEqual({ code: 1, line: `${base}/other: unhealthy (status 503)` });
    // A redirect is not followed: a health endpoint answers itself.
    expect((await checkHealth(`${base}/moved`)).code).toBe(1);
  });

  it('is unhealthy when nothing listens or the answer is late', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await checkHealth(`http://127.0.0.1:${port}/healthz`)).toMatchObject({ code: 1, line: expect.stringContaining('unreachable (') });
    expect(await checkHealth(`${base}/slow`, 200)).toMatchObject({ code: 1, line: expect.stringContaining('unreachable') });
  });
});
