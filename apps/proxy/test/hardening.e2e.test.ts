/**
 * Attacks a workload can mount against the proxy process itself, reproduced against the real
 * binary: a flood of half-sent bodies (memory), a short placeholder swapped for a long secret
 * (amplification), and a secret the proxy cannot fetch (availability).
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

let echo: EchoServer;

beforeAll(async () => {
  echo = await startEchoServer();
});

afterAll(async () => {
  await echo?.close();
});

/** The resident set size of a process, in MiB (Linux). */
function rssMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kib) / 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a flood of unfinished bodies', () => {
  const CONNECTIONS = 400;
  const DECLARED = 1024 * 1024;
  const SENT = 900 * 1024;
  const BUDGET_MIB = 32;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    proxy = await startProxyProcess(`
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
  max_buffered_body_bytes: ${BUDGET_MIB * 1024 * 1024}
  client_body_timeout: "20s"
transforms:
  - name: body_capture
    config:
      max_request_body_bytes: 1024
      rules: [{ host: "*" }]
`);
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it(`${CONNECTIONS} connections each holding ${SENT / 1024} KiB of a 1 MiB body stay within the buffer budget, and the rest get 503`, async () => {
    if (process.platform !== 'linux') return;
    const pid = proxy.child.pid!;
    const before = rssMiB(pid);
    const sockets: Socket[] = [];
    const answers: string[] = [];
    const chunk = Buffer.alloc(SENT, 0x61);
    try {
      await Promise.all(
        Array.from({ length: CONNECTIONS }, (_, i) =>
          new Promise<void>((resolve, reject) => {
            const socket = connect({ host: '127.0.0.1', port: proxy.port() }, () => {
              socket.write(`POST http://127.0.0.1:${echo.port}/flood/${i} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nContent-Length: ${DECLARED}\r\n\r\n`);
              socket.write(chunk, () => resolve());
            });
            socket.on('data', (d: Buffer) => answers.push(d.toString('latin1', 0, 12)));
            socket.on('error', () => undefined);
            socket.once('error', reject);
            sockets.push(socket);
          }),
        ),
      );
      // Let the proxy read what it was sent.
      await sleep(1_500);
      const grown = rssMiB(pid) - before;
      const refused = answers.filter((a) => a.startsWith('HTTP/1.1 503')).length;
      // Without the budget the proxy holds CONNECTIONS x 900 KiB here (measured: ~360 MiB more);
      // with it, the budget plus the connections' own buffers and not yet collected garbage.
      expect(grown).toBeLessThan(BUDGET_MIB + 96);
      expect(refused).toBeGreaterThan(CONNECTIONS / 2);
      const audits = proxy.audits().filter((a) => String(a.path).startsWith('/flood/') && a.status_code === 503);
      expect(audits.length).toBe(refused);
      expect(audits[0]).toMatchObject({ reason: 'body_buffer_budget_exhausted' });
    } finally {
      for (const s of sockets) s.destroy();
    }
    // The held memory goes back: new bodies are read again.
    await sleep(200);
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '--data-binary', 'after the flood', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${echo.port}/after`]);
    expect(r.stdout).toBe('200');
  });
});

describe('max_request_body_bytes: 0', () => {
  it('means the 1 MiB default (as in iron-proxy), never an unbounded buffer', async () => {
    const proxy = await startProxyProcess(`
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
  max_request_body_bytes: 0
transforms:
  - name: body_capture
    config:
      rules: [{ host: "*" }]
`);
    try {
      const r = await curlWithBody(proxy.port(), `http://127.0.0.1:${echo.port}/two-mib`, Buffer.alloc(2 * 1024 * 1024, 0x62));
      expect(r).toBe(413);
      expect(await proxy.waitForAudit((a) => a.path === '/two-mib')).toMatchObject({ status_code: 413, reason: 'body_too_large' });
    } finally {
      await proxy.stop();
    }
  });
});

/** POSTs `body` through the proxy on a raw socket; resolves with the status code. */
function curlWithBody(port: number, target: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      const host = new URL(target).host;
      socket.write(`POST ${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      socket.write(body);
    });
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m !== null) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
  });
}

describe('secret swap amplification', () => {
  const SECRET = 'S'.repeat(4096);
  let proxy: ProxyProcess;

  beforeAll(async () => {
    proxy = await startProxyProcess(
      `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
transforms:
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: LONG_SECRET }
          replace: { proxy_value: "PH01", match_headers: [], match_body: true, match_query: true }
          rules: []
`,
      { env: { LONG_SECRET: SECRET } },
    );
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it('refuses (413) a 156 KiB body of 4-byte placeholders that would become 156 MiB, without contacting the upstream', async () => {
    const before = echo.requests.length;
    const status = await curlWithBody(proxy.port(), `http://127.0.0.1:${echo.port}/amplify-body`, Buffer.from('PH01'.repeat(39 * 1024)));
    expect(status).toBe(413);
    expect(await proxy.waitForAudit((a) => a.path === '/amplify-body')).toMatchObject({ status_code: 413, rejected_by: 'secrets', reason: 'body_too_large' });
    expect(echo.requests.length).toBe(before);
  });

  it('refuses (413) headers and a query full of placeholders', async () => {
    const before = echo.requests.length;
    const many = 'PH01,'.repeat(2000);
    const header = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-H', `X-Many: ${many}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${echo.port}/amplify-header`]);
    expect(header.stdout).toBe('413');
    const query = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${echo.port}/amplify-query?q=${'PH01'.repeat(1000)}`]);
    expect(query.stdout).toBe('413');
    expect(await proxy.waitForAudit((a) => a.path === '/amplify-header')).toMatchObject({ reason: 'header_too_large' });
    expect(echo.requests.length).toBe(before);
  });

  it('still swaps a placeholder that fits', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-H', 'X-Key: PH01', `http://127.0.0.1:${echo.port}/fits`]);
    expect((JSON.parse(r.stdout) as { headers: Record<string, string> }).headers['x-key']).toBe(SECRET);
  });
});

describe('a secret the proxy cannot fetch', () => {
  let proxy: ProxyProcess;
  const config = `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
metrics:
  listen: "127.0.0.1:0"
transforms:
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: PRESENT_TOKEN }
          replace: { proxy_value: "PH-PRESENT", match_headers: ["X-Present"] }
          rules: []
        - source: { type: env, var: MISSING_TOKEN }
          replace: { proxy_value: "PH-REQUIRED", match_headers: ["X-Required"], require: true }
          rules: [{ host: "127.0.0.1", paths: ["/required/*"] }]
        - source: { type: env, var: MISSING_OPTIONAL }
          replace: { proxy_value: "PH-OPTIONAL", match_headers: ["X-Optional"] }
          rules: [{ host: "127.0.0.1", paths: ["/optional/*"] }]
`;

  beforeAll(async () => {
    proxy = await startProxyProcess(config, { env: { PRESENT_TOKEN: 'present-real-value-1' } });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it('does not stop the proxy: it starts, says which secrets are missing, and serves the others', async () => {
    const warned = await proxy.waitForLine((l) => Array.isArray(l.secrets_unavailable));
    expect(warned.secrets_unavailable).toEqual(['MISSING_TOKEN', 'MISSING_OPTIONAL']);
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-H', 'X-Present: PH-PRESENT', `http://127.0.0.1:${echo.port}/present`]);
    expect((JSON.parse(r.stdout) as { headers: Record<string, string> }).headers['x-present']).toBe('present-real-value-1');
  });

  it('refuses (403 secret_unavailable) a request that requires the missing secret, upstream not contacted', async () => {
    const before = echo.requests.length;
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-H', 'X-Required: PH-REQUIRED', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${echo.port}/required/x`]);
    expect(r.stdout).toBe('403');
    expect(echo.requests.length).toBe(before);
    expect(await proxy.waitForAudit((a) => a.path === '/required/x')).toMatchObject({ action: 'reject', rejected_by: 'secrets', reason: 'secret_unavailable' });
  });

  it('forwards untouched, with a skipped annotation, a request that only optionally uses it', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-H', 'X-Optional: PH-OPTIONAL', `http://127.0.0.1:${echo.port}/optional/x`]);
    expect((JSON.parse(r.stdout) as { headers: Record<string, string> }).headers['x-optional']).toBe('PH-OPTIONAL');
    const audit = await proxy.waitForAudit((a) => a.path === '/optional/x');
    expect(JSON.stringify(audit)).toContain('"skipped":[{"secret":"MISSING_OPTIONAL","reason":"secret_unavailable"}]');
  });

  it('reports not ready on /readyz, listing the missing secrets, while /healthz stays 200', async () => {
    const ready = await curl(['-w', '\n%{http_code}', `http://127.0.0.1:${proxy.port('metrics')}/readyz`]);
    const lines = ready.stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('503');
    expect(JSON.parse(lines[0]!)).toEqual({ ready: false, secrets_unavailable: ['MISSING_TOKEN', 'MISSING_OPTIONAL'] });
    const health = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${proxy.port('metrics')}/healthz`]);
    expect(health.stdout).toBe('200');
  });

  it('proxy validate --check-secrets fetches every source once and exits 1 naming the missing ones', async () => {
    const file = `${proxy.dir}/proxy.yaml`;
    const r = await runCli(['validate', '--config', file, '--check-secrets'], { PATH: process.env.PATH ?? '', PRESENT_TOKEN: 'present-real-value-1' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/proxy\.yaml:\d+:\d+ transforms\[0\]\.config\.secrets\[0\]\.source: secret PRESENT_TOKEN \(env\): available/);
    expect(r.stdout).toMatch(/secrets\[1\]\.source: secret MISSING_TOKEN \(env\): unavailable: .*MISSING_TOKEN/);
    expect(r.stdout).toContain('3 secret(s) checked, 2 unavailable');
    expect(r.stdout + r.stderr).not.toContain('present-real-value-1');
    const ok = await runCli(['validate', '--config', file, '--check-secrets'], {
      PATH: process.env.PATH ?? '',
      PRESENT_TOKEN: 'a-value-1',
      MISSING_TOKEN: 'b-value-2',
      MISSING_OPTIONAL: 'c-value-3',
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('3 secret(s) checked, 0 unavailable');
  });
});
