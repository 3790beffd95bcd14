/**
 * The MCP gateway end to end: an agent (the official MCP SDK client, behind HTTPS_PROXY-style
 * CONNECT with TLS interception) talks to a client-facing MCP name that exists nowhere; the
 * proxy applies the tool policy, then routes what it let through to the real server's URL with
 * a credential the agent never holds. The rewritten upstream is checked by the allowlist and
 * the upstream guard like any other destination.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestPki, type TestPki } from '@proxy/test-kit';
import { runCli, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

const TOKEN = 'mcp-upstream-token-7f3a9c1e5b2d4f60';

/** What the MCP server saw of each request: method, URL and Authorization. */
const seen: { method: string; url: string; authorization: string | undefined }[] = [];
/** Tool calls the server executed. */
const executed: string[] = [];

function mcpServer(): McpServer {
  const server = new McpServer({ name: 'gateway-tools', version: '1.0.0' });
  server.registerTool('search', { inputSchema: { q: z.string() } }, ({ q }) => {
    executed.push('search');
    return { content: [{ type: 'text' as const, text: `found ${q}` }] };
  });
  server.registerTool('delete_repository', { inputSchema: { repo: z.string() } }, () => {
    executed.push('delete_repository');
    return { content: [{ type: 'text' as const, text: 'deleted' }] };
  });
  return server;
}

/** A stateless Streamable HTTP MCP server that only answers requests carrying the gateway's token. */
async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
  seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    res.writeHead(401, { 'content-type': 'text/plain' }).end('missing or wrong token\n');
    return;
  }
  const raw = Buffer.concat(chunks).toString();
  const transport = new StreamableHTTPServerTransport({ enableJsonResponse: false });
  const server = mcpServer();
  res.on('close', () => void transport.close().then(() => server.close()));
  await server.connect(transport);
  await transport.handleRequest(req, res, raw === '' ? undefined : JSON.parse(raw));
}

let pki: TestPki;
let upstream: Server;
let upstreamPort: number;
let dir: string;
let proxy: ProxyProcess;
let agent: ProxyAgent;

beforeAll(async () => {
  pki = await createTestPki({ names: ['127.0.0.1'], caName: 'mcp gateway upstream CA' });
  upstream = createHttpsServer({ cert: pki.cert, key: pki.key }, (req, res) => void handleMcp(req, res));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as AddressInfo).port;
  dir = await mkdtemp(join(tmpdir(), 'proxy-mcp-gateway-e2e-'));
  const generated = await runCli(['ca', 'generate', '--out', dir, '--name', 'proxy mcp gateway CA']);
  if (generated.code !== 0) throw new Error(generated.stderr);
  const proxyCaPem = await readFile(join(dir, 'ca.crt'), 'utf8');
  // The client-facing names resolve nowhere: a routed request never dials them.
  proxy = await startProxyProcess(
    `
proxy:
  tunnel_listen: "127.0.0.1:0"
  upstream_deny_cidrs: ["169.254.0.0/16"]
tls:
  mode: mitm
  ca_cert: "ca.crt"
  ca_key: "ca.key"
  upstream_ca_bundle: "${pki.caFile}"
transforms:
  - name: allowlist
    config:
      domains: ["*.internal.test", "127.0.0.1:${upstreamPort}", "169.254.169.254"]
mcp:
  servers:
    - name: tools
      rules:
        - host: "*.internal.test"
      tools:
        - name: search
mcp_gateway:
  routes:
    - name: tools
      rules:
        - host: "tools.internal.test"
      upstream: "https://127.0.0.1:${upstreamPort}/v1/mcp?tenant=acme"
      credentials:
        - source: { type: env, var: MCP_TOKEN }
          inject: { header: Authorization, formatter: "Bearer {{ .Value }}" }
    - name: unlisted
      rules:
        - host: "unlisted.internal.test"
      upstream: "https://127.0.0.1:1/v1/mcp"
    - name: metadata
      rules:
        - host: "metadata.internal.test"
      upstream: "http://169.254.169.254/mcp"
`,
    { dir, env: { MCP_TOKEN: TOKEN } },
  );
  agent = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port('tunnel')}`, requestTls: { ca: proxyCaPem } });
});

afterAll(async () => {
  await proxy?.stop();
  await agent?.close();
  await new Promise((r) => upstream?.close(r));
  await pki?.remove();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** An MCP SDK client whose requests go through the proxy's tunnel listener, to `url`. */
async function connectClient(url: string): Promise<Client> {
  const client = new Client({ name: 'agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    // The agent's own Authorization is a placeholder the gateway replaces.
    requestInit: { headers: { authorization: 'Bearer placeholder' } },
    fetch: (u, init) => undiciFetch(u as string, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>,
  });
  await client.connect(transport);
  return client;
}

describe('mcp_gateway through the proxy', () => {
  it('routes the agent to the upstream URL with the credential, after the tool policy', async () => {
    const before = seen.length;
    const client = await connectClient('https://tools.internal.test/client/path?session=1');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['search']);
    const ok = await client.callTool({ name: 'search', arguments: { q: 'proxy' } });
    expect(ok.content).toEqual([{ type: 'text', text: 'found proxy' }]);
    const executedBefore = executed.length;
    await expect(client.callTool({ name: 'delete_repository', arguments: { repo: 'x' } })).rejects.toMatchObject({ code: -32001 });
    expect(executed.slice(executedBefore)).toEqual([]);
    await client.close();

    const requests = seen.slice(before);
    expect(requests.length).toBeGreaterThanOrEqual(3);
    for (const r of requests) {
      expect(r.url).toBe('/v1/mcp?tenant=acme&session=1');
      expect(r.authorization).toBe(`Bearer ${TOKEN}`);
    }

    const audit = await proxy.waitForAudit((a) => JSON.stringify(a.mcp ?? null).includes('"tool":"search"'));
    expect(audit).toMatchObject({
      host: 'tools.internal.test',
      path: '/client/path',
      action: 'allow',
      mcp: { server: 'tools', gateway: { route: 'tools', upstream: `https://127.0.0.1:${upstreamPort}/v1/mcp?tenant=acme`, credentials_injected: ['MCP_TOKEN:header:Authorization'] } },
    });
    const denied = await proxy.waitForAudit((a) => a.reason === 'tool_not_allowed');
    expect(denied).toMatchObject({ action: 'reject', status_code: 200, rejected_by: 'mcp' });
    expect((denied.mcp as Record<string, unknown>).gateway).toBeUndefined();
    expect(`${proxy.stdout()}${proxy.stderr()}`).not.toContain(TOKEN);
  });

  it('refuses a route whose upstream the allowlist does not list (403), dialling nothing', async () => {
    const before = seen.length;
    const r = await undiciFetch('https://unlisted.internal.test/mcp', { method: 'GET', headers: { accept: 'text/event-stream' }, dispatcher: agent });
    expect(r.status).toBe(403);
    await r.text();
    const audit = await proxy.waitForAudit((a) => a.host === 'unlisted.internal.test');
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'allowlist', reason: 'not_allowlisted' });
    expect(seen.length).toBe(before);
  });

  it('refuses a route whose upstream is in proxy.upstream_deny_cidrs (403 upstream_denied)', async () => {
    const r = await undiciFetch('https://metadata.internal.test/mcp', { method: 'GET', dispatcher: agent });
    expect(r.status).toBe(403);
    await r.text();
    const audit = await proxy.waitForAudit((a) => a.host === 'metadata.internal.test');
    expect(audit).toMatchObject({ reason: 'upstream_denied', mcp: { gateway: { route: 'metadata', upstream: 'http://169.254.169.254/mcp' } } });
  });
});
