/**
 * Live reload end to end: the built binary starts on one file, is reloaded to another through
 * the management API and back through SIGHUP, and each file's behaviour is asserted on real
 * requests; invalid files get 422 with every problem (file, line, field) and leave the running
 * pipeline serving; the API authenticates before anything else.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { runCli, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

const KEY = 'mgmt-key-5e1f0c9a7b';
const INJECTED = 'injected-real-3c8d2e71';

let echo: EchoServer;
let proxy: ProxyProcess;
let dispatcher: ProxyAgent;
let api: string;

/** Config A: the allowlist only. Config B: the same plus a header injected from a secret. */
function configA(port: number): string {
  return `proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
management:
  listen: "127.0.0.1:0"
  api_key_env: MGMT_KEY
transforms:
  - name: allowlist
    config:
      domains: ["127.0.0.1:${port}"]
`;
}

function configB(port: number, secretVar = 'INJECTED'): string {
  return `${configA(port)}  - name: secrets
    config:
      secrets:
        - source: { type: env, var: ${secretVar} }
          inject: { header: X-Injected }
          rules:
            - host: "127.0.0.1"
`;
}

async function write(yaml: string): Promise<void> {
  await writeFile(join(proxy.dir, 'proxy.yaml'), yaml);
}

async function call(method: string, path: string, key: string | null = KEY): Promise<{ status: number; body: Record<string, unknown>; allow: string | null }> {
  const res = await fetch(`http://127.0.0.1:${proxy.port('management')}${path}`, {
    method,
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), allow: res.headers.get('allow') };
}

/** One request through the proxy: the header the upstream saw and the request's audit record. */
async function probe(tag: string): Promise<{ injected: string | undefined; generation: unknown }> {
  const res = await undiciFetch(`${api}/probe/${tag}`, { dispatcher });
  expect(res.status).toBe(200);
  const seen = (await res.json()) as { headers: Record<string, string> };
  const record = await proxy.waitForAudit((r) => r.path === `/probe/${tag}`);
  return { injected: seen.headers['x-injected'], generation: record.config_generation };
}

beforeAll(async () => {
  echo = await startEchoServer();
  api = `http://127.0.0.1:${echo.port}`;
  proxy = await startProxyProcess(configA(echo.port), { env: { MGMT_KEY: KEY, INJECTED } });
  dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port('http')}`, proxyTunnel: false });
});

afterAll(async () => {
  await dispatcher?.close();
  await proxy?.stop();
  await echo?.close();
});

describe('reload', () => {
  it('authenticates before checking the method or the path', async () => {
    expect((await call('GET', '/v1/reload', null)).status).toBe(401);
    expect((await call('POST', '/v1/reload', 'wrong-key')).body).toEqual({ error: 'unauthorized' });
    expect((await call('DELETE', '/v1/nothing', null)).status).toBe(401);
    const wrongMethod = await call('GET', '/v1/reload');
    expect([wrongMethod.status, wrongMethod.allow]).toEqual([405, 'POST']);
    expect((await call('POST', '/v1/status')).status).toBe(405);
    expect((await call('GET', '/v1/nothing')).status).toBe(404);
  });

  it('answers GET /healthz without the key (liveness), and nothing else about /healthz', async () => {
    const res = await fetch(`http://127.0.0.1:${proxy.port('management')}/healthz`);
    expect([res.status, await res.text()]).toEqual([200, 'ok\n']);
    const head = await fetch(`http://127.0.0.1:${proxy.port('management')}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await call('POST', '/healthz', null)).status).toBe(401);
    expect((await call('GET', '/healthz/x', null)).status).toBe(401);
  });

  it('starts on A, reloads to B through the API, then back to A on SIGHUP', async () => {
    const before = await call('GET', '/v1/status');
    expect(before.body).toMatchObject({ config_generation: 1, last_reload_at: null });
    expect(await probe('a1')).toEqual({ injected: undefined, generation: 1 });

    await write(configB(echo.port));
    const reloaded = await call('POST', '/v1/reload');
    expect(reloaded).toMatchObject({ status: 200, body: { status: 'ok', config_generation: 2 } });
    expect(await probe('b1')).toEqual({ injected: INJECTED, generation: 2 });
    const after = await call('GET', '/v1/status');
    expect(after.body).toMatchObject({ config_generation: 2, last_reload_result: 'ok' });
    expect(after.body.config_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(after.body.config_hash).not.toBe(before.body.config_hash);

    await write(configA(echo.port));
    proxy.child.kill('SIGHUP');
    await proxy.waitForLine((l) => l.msg === 'configuration reloaded' && l.config_generation === 3);
    expect(await probe('a2')).toEqual({ injected: undefined, generation: 3 });
  });

  it('answers 422 with every problem and keeps the running pipeline', async () => {
    await write(configB(echo.port));
    expect((await call('POST', '/v1/reload')).status).toBe(200);
    const generation = (await call('GET', '/v1/status')).body.config_generation;

    await write(`${configB(echo.port)}  - name: no_such_transform
  - name: allowlist
    config:
      domainz: []
`);
    const invalid = await call('POST', '/v1/reload');
    expect(invalid.status).toBe(422);
    expect(invalid.body.errors).toEqual([
      expect.objectContaining({ file: join(proxy.dir, 'proxy.yaml'), line: 18, field: 'transforms[2].name', message: expect.stringContaining('no_such_transform') }),
      expect.objectContaining({ line: 21, field: 'transforms[3].config.domainz' }),
    ]);
    expect(String(invalid.body.error).split('\n')).toHaveLength(2);

    // A secret whose first fetch fails fails the reload too, at its source block.
    await write(configB(echo.port, 'MISSING_VAR'));
    const unavailable = await call('POST', '/v1/reload');
    expect(unavailable.status).toBe(422);
    expect(unavailable.body.errors).toEqual([expect.objectContaining({ line: 14, field: 'transforms[1].config.secrets[0].source' })]);

    const status = await call('GET', '/v1/status');
    expect(status.body).toMatchObject({ config_generation: generation, last_reload_result: 'failed' });
    expect(await probe('b2')).toEqual({ injected: INJECTED, generation });
  });

  it('names the settings a reload does not re-apply', async () => {
    await write(configB(echo.port).replace('upstream_deny_cidrs: []', 'upstream_deny_cidrs: []\n  max_request_body_bytes: 4096'));
    const reloaded = await call('POST', '/v1/reload');
    expect(reloaded.body).toMatchObject({ status: 'ok', ignored: ['proxy.max_request_body_bytes'] });
    await proxy.waitForLine((l) => l.msg?.includes('does not re-apply proxy.max_request_body_bytes') === true);
  });

  it('never writes the key or the injected secret', () => {
    const written = proxy.stdout() + proxy.stderr();
    expect(written).not.toContain(KEY);
    expect(written).not.toContain(INJECTED);
  });
});

describe('management API without its key', () => {
  it('refuses to start', async () => {
    const dir = proxy.dir;
    await writeFile(join(dir, 'nokey.yaml'), configA(echo.port));
    const result = await runCli(['validate', '--config', join(dir, 'nokey.yaml')], { PATH: process.env.PATH ?? '' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/nokey\.yaml:6:\d+: management\.api_key_env: environment variable MGMT_KEY is unset or empty/);
  });
});
