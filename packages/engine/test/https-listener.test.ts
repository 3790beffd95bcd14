import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ErrorCodes, reject } from '@proxy/core';
import type { ProxyRequest } from '@proxy/core';
import { requireCommand, startDnsServer, type DnsTestServer } from '@proxy/test-kit';
import { parseClientHello } from '../src/client-hello.js';
import { createEngine } from '../src/index.js';
import { curl, echoed, RecordingLogger, startEngine, type TestEngine } from './support.js';
import { closed, createTlsWorld, dial, issuerOf, needPort443, readUntil, startEchoOnPort443, type Port443Upstream, type TlsWorld } from './tls-support.js';

let world: TlsWorld;
let upstream: Port443Upstream;
let dns: DnsTestServer;
let proxy: TestEngine;
let seen: ProxyRequest[];

beforeAll(async () => {
  world = await createTlsWorld();
  upstream = await startEchoOnPort443(world.upstreamCert);
  dns = await startDnsServer({ records: { 'upstream.test': { A: [upstream.echo.host] }, 'other.test': { A: [upstream.echo.host] } } });
  proxy = await startEngine({
    httpListen: undefined,
    httpsListen: '127.0.0.1:0',
    certificates: world.leaves,
    upstreamCa: world.upstreamCa.cert,
    upstreamResolver: dns.resolver,
    upstreamDenyCidrs: [],
  });
  await recording();
});

afterEach(async () => {
  await recording();
});

afterAll(async () => {
  await proxy?.close();
  await Promise.all([upstream?.echo.close(), dns?.close()]);
  await world?.close();
});

function recording(decide: (request: ProxyRequest) => ReturnType<typeof reject> | undefined = () => undefined): Promise<unknown> {
  seen = [];
  return proxy.use({
    name: 'policy',
    transform: {
      onRequest: (request) => {
        seen.push(request);
        return decide(request);
      },
    },
  });
}

/** curl straight at the https listener, `upstream.test` resolved to it (DNS interception). */
function curlDirect(path: string, ...args: string[]): ReturnType<typeof curl> {
  const port = proxy.port('https');
  return curl(['--cacert', world.proxyCaFile, '--resolve', `upstream.test:${port}:127.0.0.1`, ...args, `https://upstream.test:${port}${path}`]);
}

/** Runs `openssl s_client` against the https listener with `stdin` as the request; skips the test where openssl is missing. */
function sClient(args: readonly string[], stdin: string): Promise<{ stdout: string; stderr: string }> {
  requireCommand('openssl');
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${proxy.port('https')}`, '-CAfile', world.proxyCaFile, '-ign_eof', ...args], (_err, stdout, stderr) =>
      resolve({ stdout, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

describe('https listener, TLS interception', () => {
  it('terminates TLS for the SNI and forwards to the SNI host on port 443 with transforms applied', async (ctx) => {
    needPort443(ctx, upstream);
    await proxy.use({
      name: 'stamp',
      transform: {
        onRequest: (request) => {
          request.headers.set('X-Stamped', `${request.mode} ${request.scheme} ${request.host}:${request.port}`);
        },
      },
    });
    const result = await curlDirect('/direct?a=1', '-H', 'X-Client: yes');
    expect(result.stderr).toBe('');
    const body = echoed(result.stdout);
    expect(body).toMatchObject({ path: '/direct', query: 'a=1' });
    expect(body.headers['x-stamped']).toBe('mitm https upstream.test:443');
    expect(body.headers.host).toBe('upstream.test');
    const audit = await proxy.audit((a) => a.path === '/direct');
    expect(audit).toMatchObject({ mode: 'mitm', sni: 'upstream.test', host: 'upstream.test', action: 'allow', status_code: 200 });
    expect(audit).not.toHaveProperty('tunnel');
  });

  it('answers what a transform rejects, over the intercepted connection', async () => {
    await recording((r) => (r.path === '/blocked' ? reject(403, 'not_allowlisted') : undefined));
    const result = await curlDirect('/blocked', '-w', '\n%{http_code}');
    expect(result.stdout.trim().split('\n').pop()).toBe('403');
    const audit = await proxy.audit((a) => a.path === '/blocked');
    expect(audit).toMatchObject({ mode: 'mitm', action: 'reject', rejected_by: 'policy', reason: 'not_allowlisted' });
  });

  it('answers 421 when the Host names another host than the SNI', async () => {
    const mismatch = await curlDirect('/sni-host', '-H', 'Host: other.test', '-w', '\n%{http_code}');
    expect(mismatch.stdout.trim().split('\n').pop()).toBe('421');
    const audit = await proxy.audit((a) => a.reason === 'host_mismatch');
    expect(audit).toMatchObject({ mode: 'mitm', sni: 'upstream.test', host: 'upstream.test', status_code: 421, action: 'reject' });
  });

  it('ignores case and port when comparing the Host with the SNI', async (ctx) => {
    needPort443(ctx, upstream);
    const sameHost = await curlDirect('/sni-case', '-H', 'Host: UPSTREAM.test:8443');
    expect(echoed(sameHost.stdout).path).toBe('/sni-case');
  });

  it('fails the handshake of a client that sends no SNI, with an audit record', async () => {
    const noSni = tlsConnect({ host: '127.0.0.1', port: proxy.port('https'), ca: world.proxyCa.cert });
    await expect(new Promise((resolve, fail) => noSni.once('secureConnect', resolve).once('error', fail))).rejects.toThrow(/unrecognized name/i);
    const audit = await proxy.audit((a) => a.reason === 'missing_sni');
    expect(audit).toMatchObject({ mode: 'mitm', host: '', action: 'reject', status_code: 400 });

    const openssl = await sClient(['-noservername'], '');
    expect(`${openssl.stdout}${openssl.stderr}`).toMatch(/unrecognized name/i);
  });

  it('serves openssl s_client with a leaf for the requested name', async (ctx) => {
    needPort443(ctx, upstream);
    const { stdout } = await sClient(['-servername', 'upstream.test'], 'GET /s-client HTTP/1.1\r\nHost: upstream.test\r\nConnection: close\r\n\r\n');
    expect(stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(stdout).toMatch(/issuer=CN ?= ?proxy test CA/);
    expect(stdout).toMatch(/"path":"\/s-client"/);
  });

  it('offers only http/1.1 by ALPN', async () => {
    const client = tlsConnect({ host: '127.0.0.1', port: proxy.port('https'), servername: 'upstream.test', ca: world.proxyCa.cert, ALPNProtocols: ['h2', 'http/1.1'] });
    await new Promise((resolve, fail) => client.once('secureConnect', resolve).once('error', fail));
    expect(client.alpnProtocol).toBe('http/1.1');
    expect(issuerOf(client)).toBe('proxy test CA');
    client.destroy();
  });

  it('proxies wss:// upgrades arriving over intercepted TLS', async (ctx) => {
    needPort443(ctx, upstream);
    const options: HttpsRequestOptions = { ca: world.proxyCa.cert, servername: 'upstream.test', headers: { Host: 'upstream.test' } };
    const ws = new WebSocket(`wss://127.0.0.1:${proxy.port('https')}/chat`, options);
    await new Promise((resolve, fail) => ws.once('open', resolve).once('error', fail));
    const echo = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString('utf8'))));
    ws.send('over mitm');
    expect(await echo).toBe('over mitm');
    ws.close();
    const audit = await proxy.audit((a) => a.path === '/chat');
    expect(audit).toMatchObject({ mode: 'mitm', status_code: 101, sni: 'upstream.test' });
  });
});

describe('https listener under abuse', () => {
  it('closes malformed, truncated, oversized and non-TLS hellos with audit records, and keeps serving', async () => {
    const port = proxy.port('https');
    const real = await readClientHello('upstream.test');
    const inputs: Buffer[] = [Buffer.from('GET / HTTP/1.1\r\nHost: upstream.test\r\n\r\n'), oversizedHello()];
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 0) inputs.push(randomBytes(1 + (i % 200)));
      else if (i % 3 === 1) inputs.push(Buffer.concat([real.subarray(0, 5), randomBytes(200)]));
      else inputs.push(corrupt(real, i));
    }
    const before = proxy.audits.filter((a) => a.reason === 'bad_client_hello').length;
    await Promise.all(
      inputs.map(async (bytes) => {
        const socket = await dial(port);
        socket.on('error', () => undefined);
        socket.write(bytes);
        // A truncated hello waits for more: end our side so the prelude cannot complete.
        socket.end();
        await closed(socket);
      }),
    );
    const bad = proxy.audits.filter((a) => a.reason === 'bad_client_hello').length - before;
    expect(bad).toBeGreaterThan(150);
    // Still serving: a request runs the pipeline, whose answer needs no upstream.
    await recording((r) => (r.path === '/after-abuse' ? reject(403, 'after_abuse') : undefined));
    const still = await curlDirect('/after-abuse', '-w', '\n%{http_code}');
    expect(still.stdout.trim().split('\n').pop()).toBe('403');
    expect(await proxy.audit((a) => a.path === '/after-abuse')).toMatchObject({ mode: 'mitm', sni: 'upstream.test', reason: 'after_abuse' });
  });

  it('closes a connection that sends a partial hello and stops, on its own', async () => {
    const real = await readClientHello('upstream.test');
    const socket = await dial(proxy.port('https'));
    socket.write(real.subarray(0, 40));
    socket.end();
    await closed(socket);
  });
});

describe('TLS options', () => {
  it('refuses mitm listeners without certificates as a config error', () => {
    const build = (extra: object): unknown =>
      createEngine({
        logger: new RecordingLogger(),
        onAudit: () => undefined,
        maxRequestBodyBytes: 1024,
        maxResponseBodyBytes: 0,
        upstreamResponseHeaderTimeoutMs: 1000,
        upstreamDenyCidrs: [],
        ...extra,
      });
    for (const listen of [{ httpsListen: '127.0.0.1:0' }, { tunnelListen: '127.0.0.1:0' }]) {
      expect(() => build(listen)).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
      expect(() => build({ ...listen, tlsMode: 'sni-only' })).not.toThrow();
    }
    expect(() => build({ httpsListen: 'nonsense' })).toThrow(/proxy\.https_listen/);
    expect(() => build({ tunnelListen: '127.0.0.1:0', tlsMode: 'sni-only', certificates: world.leaves, httpsListen: ':99999' })).toThrow(/https_listen/);
  });
});

/** The ClientHello a Node TLS client sends for `servername`. */
async function readClientHello(servername: string): Promise<Buffer> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  const captured = new Promise<Buffer>((resolve) => server.once('connection', (socket) => void readUntil(socket, (b) => parseClientHello(b).status !== 'incomplete').then(resolve)));
  const client = tlsConnect({ host: '127.0.0.1', port: address.port, servername });
  client.on('error', () => undefined);
  const hello = await captured;
  client.destroy();
  server.close();
  return hello;
}

/** A hello whose record claims more than the 16 KiB a ClientHello may take. */
function oversizedHello(): Buffer {
  const body = Buffer.alloc(17_000, 0x41);
  const message = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  const records: Buffer[] = [];
  for (let i = 0; i < message.length; i += 16_000) {
    const fragment = message.subarray(i, i + 16_000);
    records.push(Buffer.from([0x16, 0x03, 0x01, fragment.length >> 8, fragment.length & 0xff]), fragment);
  }
  return Buffer.concat(records);
}

/** `hello` with a few bytes past the record header overwritten. */
function corrupt(hello: Buffer, seed: number): Buffer {
  const copy = Buffer.from(hello);
  for (let i = 0; i < 4; i++) copy[5 + ((seed * 7919 + i * 104_729) % (copy.length - 5))] = randomBytes(1)[0]!;
  return copy;
}
