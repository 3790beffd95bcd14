/**
 * Invariant 2: a real secret never appears in a log line or an audit record, whatever the
 * order of the transforms. Every order of `secrets`, `annotate`, `body_capture` and an
 * allowlist in warn mode runs in a real proxy (the server the binary runs, its log stream
 * captured; and the binary itself for two orders); curl puts placeholders wherever the
 * recording transforms look (the header annotate copies, the body body_capture keeps, the path
 * the warn line prints, Basic credentials), and then every byte the proxy wrote is searched for
 * every secret in every spelling.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { startProxy } from '../src/index.js';
import { curl, startProxyProcess } from './support/proxy-process.js';

const SECRETS = {
  API_TOKEN: 'sk-live-4f1d9a7c2b8e6d5f',
  BASIC_PASS: 'pa55-"quoted"\\back-9e8d7c',
  INJECTED: 'inj-7a6b5c4d3e2f1a0b',
};
const PH = { api: 'PH-API-0001', basic: 'PH-BASIC-0002' };

/** Every spelling of a secret a leak could take: as is, JSON-escaped, percent-encoded, base64 inside Basic credentials. */
function spellings(value: string): string[] {
  return [
    value,
    JSON.stringify(value).slice(1, -1),
    encodeURIComponent(value),
    Buffer.from(`agent:${value}`).toString('base64'),
    Buffer.from(`agent:${value}`).toString('base64url'),
  ];
}

const TRANSFORMS = {
  secrets: `  - name: secrets
    config:
      secrets:
        - source: { type: env, var: API_TOKEN }
          replace: { proxy_value: "${PH.api}", match_headers: [], match_query: true, match_path: true, match_body: true }
          rules: []
        - source: { type: env, var: BASIC_PASS }
          replace: { proxy_value: "${PH.basic}", match_headers: ["Authorization"] }
          rules: []
        - source: { type: env, var: INJECTED }
          inject: { header: "X-Injected", formatter: "Token {{ .Value }}" }
          rules: []
`,
  annotate: `  - name: annotate
    config:
      annotations:
        - rules: [{ host: "*" }]
          headers: ["X-Token", "Authorization", "X-Injected", "X-Client-Chosen"]
`,
  body_capture: `  - name: body_capture
    config:
      max_request_body_bytes: 4096
      rules: [{ host: "*" }]
`,
  allowlist: `  - name: allowlist
    config:
      warn: true
      domains: ["allowed.invalid"]
`,
};

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

let echo: EchoServer;

beforeAll(async () => {
  echo = await startEchoServer();
});

afterAll(async () => {
  await echo?.close();
});

function configOf(order: readonly (keyof typeof TRANSFORMS)[]): string {
  return `proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
log:
  level: debug
transforms:
${order.map((name) => TRANSFORMS[name]).join('')}`;
}

/** Sends the requests through the proxy on `port`; returns what the upstream received for them. */
async function sendThrough(port: number, tag: string): Promise<string> {
  const base = `http://127.0.0.1:${echo.port}`;
  const proxy = ['-x', `http://127.0.0.1:${port}`, '-H', `X-Order: ${tag}`];
  const results = await Promise.all([
    curl([...proxy, '-H', `X-Token: Bearer ${PH.api}`, '-H', `X-Client-Chosen: ${PH.api}`, `${base}/v1/${PH.api}/items?key=${PH.api}`]),
    curl([...proxy, '-X', 'POST', '-H', 'Content-Type: application/json', '--data', `{"token":"${PH.api}"}`, `${base}/body`]),
    curl([...proxy, '-u', `agent:${PH.basic}`, `${base}/basic`]),
  ]);
  for (const r of results) expect(r.code).toBe(0);
  return JSON.stringify(echo.requests.filter((r) => r.headers['x-order'] === tag));
}

/** Runs the requests through the proxy server in this process, its log stream captured. */
async function exerciseInProcess(order: readonly (keyof typeof TRANSFORMS)[]): Promise<{ output: string; upstreamSaw: string }> {
  let output = '';
  const logDestination = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      output += chunk.toString();
      done();
    },
  });
  const proxy = await startProxy({ configText: configOf(order), configName: 'leak.yaml', env: SECRETS, logDestination });
  let upstreamSaw: string;
  try {
    const port = proxy.addresses.find((a) => a.kind === 'http')!.port;
    upstreamSaw = await sendThrough(port, `in-process-${order.join('-')}`);
    // The audit record of the last request is written once its response is over.
    for (let i = 0; i < 50 && output.split('"msg":"request"').length - 1 < 3; i++) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await proxy.close(0);
  }
  return { output, upstreamSaw };
}

/** Runs the requests through the `proxy` binary; returns every byte it wrote on stdout and stderr. */
async function exerciseBinary(order: readonly (keyof typeof TRANSFORMS)[]): Promise<{ output: string; upstreamSaw: string }> {
  const proxy = await startProxyProcess(configOf(order), { env: SECRETS });
  let upstreamSaw: string;
  try {
    upstreamSaw = await sendThrough(proxy.port(), `binary-${order.join('-')}`);
    await proxy.waitForLine(() => proxy.audits().length >= 3);
  } finally {
    await proxy.stop();
  }
  return { output: proxy.stdout() + proxy.stderr(), upstreamSaw };
}

function expectNoSecret(output: string, upstreamSaw: string): void {
  // The swap happened: the upstream received the real values.
  expect(upstreamSaw).toContain(SECRETS.API_TOKEN);
  expect(upstreamSaw).toContain(SECRETS.INJECTED);
  expect(output).toContain('"msg":"request"');
  for (const [name, value] of Object.entries(SECRETS)) {
    for (const spelling of spellings(value)) {
      expect(output.includes(spelling), `${name} (as ${JSON.stringify(spelling)}) in the proxy's output`).toBe(false);
    }
  }
}

const ORDERS = permutations(Object.keys(TRANSFORMS) as (keyof typeof TRANSFORMS)[]);

describe('no secret value in anything the proxy writes, whatever the transform order', () => {
  it.each(ORDERS.map((order) => [order.join(' > '), order] as const))('%s', async (_name, order) => {
    const { output, upstreamSaw } = await exerciseInProcess(order);
    expectNoSecret(output, upstreamSaw);
    // The recording transforms did record: where they saw a secret, the record names it instead.
    if (order.indexOf('secrets') < order.indexOf('annotate')) expect(output).toContain('[redacted:API_TOKEN]');
    if (order.indexOf('secrets') < order.indexOf('annotate')) expect(output).toContain('[redacted:INJECTED]');
  });

  it.each([
    ['secrets first', ['secrets', 'annotate', 'body_capture', 'allowlist']],
    ['secrets last', ['allowlist', 'body_capture', 'annotate', 'secrets']],
  ] as const)('the proxy binary, %s: stdout and stderr hold no secret', async (_name, order) => {
    const { output, upstreamSaw } = await exerciseBinary(order);
    expectNoSecret(output, upstreamSaw);
  });
});
