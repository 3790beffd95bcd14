/**
 * The MCP tool policy end to end: the official MCP SDK's client and server (Streamable HTTP, in
 * both its event-stream and JSON answer modes), the client reaching the server through the
 * proxy's tunnel listener with TLS interception, as an agent behind HTTPS_PROXY would.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
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
import { createTestPki, startDnsServer, type DnsTestServer, type TestPki } from '@proxy/test-kit';
import { runCli, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

/** Tool calls the MCP server actually executed, by tool name. */
const executed: string[] = [];
/** Raw POST bodies the MCP server received. */
const received: string[] = [];

/** A fresh stateless MCP server per request (the SDK's pattern for stateless Streamable HTTP). */
function mcpServer(): McpServer {
  const server = new McpServer({ name: 'test-tools', version: '1.0.0' });
  const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
  server.registerTool('search_repositories', { inputSchema: { q: z.string() } }, ({ q }) => {
    executed.push('search_repositories');
    return text(`found ${q}`);
  });
  server.registerTool('create_issue', { inputSchema: { owner: z.string(), repo: z.string(), title: z.string() } }, ({ repo }) => {
    executed.push('create_issue');
    return text(`issue in ${repo}`);
  });
  server.registerTool('edit_files', { inputSchema: { files: z.array(z.object({ path: z.string() })) } }, () => {
    executed.push('edit_files');
    return text('edited');
  });
  server.registerTool('delete_repository', { inputSchema: { repo: z.string() } }, () => {
    executed.push('delete_repository');
    return text('deleted');
  });
  return server;
}

async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString();
  if (req.method === 'POST') received.push(raw);
  const json = req.url?.startsWith('/mcp-json') === true;
  const transport = new StreamableHTTPServerTransport({ enableJsonResponse: json });
  const server = mcpServer();
  res.on('close', () => void transport.close().then(() => server.close()));
  await server.connect(transport);
  let parsed: unknown;
  try {
    parsed = raw === '' ? undefined : JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  await transport.handleRequest(req, res, parsed);
}

let pki: TestPki;
let upstream: Server;
let upstreamPort: number;
let dns: DnsTestServer;
let dir: string;
let proxyCaPem: string;
let proxy: ProxyProcess;
let agent: ProxyAgent;

beforeAll(async () => {
  pki = await createTestPki({ names: ['mcp.example.test', '127.0.0.1'], caName: 'mcp upstream CA' });
  upstream = createHttpsServer({ cert: pki.cert, key: pki.key }, (req, res) => void handleMcp(req, res));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as AddressInfo).port;
  dns = await startDnsServer({ records: { 'mcp.example.test': { A: ['127.0.0.1'] } } });
  dir = await mkdtemp(join(tmpdir(), 'proxy-mcp-e2e-'));
  const generated = await runCli(['ca', 'generate', '--out', dir, '--name', 'proxy mcp CA']);
  if (generated.code !== 0) throw new Error(generated.stderr);
  proxyCaPem = await readFile(join(dir, 'ca.crt'), 'utf8');
  proxy = await startProxyProcess(
    `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
  tunnel_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
tls:
  mode: mitm
  ca_cert: "ca.crt"
  ca_key: "ca.key"
  upstream_ca_bundle: "${pki.caFile}"
transforms:
  - name: allowlist
    config:
      domains: ["mcp.example.test:${upstreamPort}", "127.0.0.1:*"]
mcp:
  error:
    code: -32001
    message: "blocked by iron-proxy policy"
  servers:
    - name: test-tools
      rules:
        - host: "mcp.example.test"
          paths: ["/mcp", "/mcp-json"]
      tools:
        - name: "search_repositories"
        - name: "create_issue"
          when:
            - path: "owner"
              equals: "ironsh"
            - path: "repo"
              in: ["iron-proxy", "tunis-v2"]
        - name: "edit_files"
          when:
            - path: "files.0.path"
              matches: "^docs/"
    - name: streaming
      rules:
        - host: "127.0.0.1"
          paths: ["/stream"]
      tools:
        - name: "allowed_tool"
`,
    { dir },
  );
  agent = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port('tunnel')}`, requestTls: { ca: proxyCaPem } });
});

afterAll(async () => {
  await proxy?.stop();
  await agent?.close();
  await new Promise((r) => upstream?.close(r));
  await dns?.close();
  await pki?.remove();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** An MCP SDK client whose every request goes through the proxy's tunnel listener. */
async function connectClient(path: '/mcp' | '/mcp-json'): Promise<Client> {
  const client = new Client({ name: 'agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`https://mcp.example.test:${upstreamPort}${path}`), {
    fetch: (url, init) => undiciFetch(url as string, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>,
  });
  await client.connect(transport);
  return client;
}

/** POSTs a raw body to the MCP server through the proxy. */
async function rawPost(body: string, contentType: string | undefined): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
  if (contentType !== undefined) headers['content-type'] = contentType;
  const r = await undiciFetch(`https://mcp.example.test:${upstreamPort}/mcp-json`, { method: 'POST', body, headers, dispatcher: agent });
  return { status: r.status, text: await r.text() };
}

const call = (id: number, name: string, args: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

describe.each(['/mcp', '/mcp-json'] as const)('the MCP SDK through the proxy (%s)', (path) => {
  it('lists only the allowed tools', async () => {
    const client = await connectClient(path);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['create_issue', 'edit_files', 'search_repositories']);
    await client.close();
  });

  it('calls an allowed tool, and gets the configured error for a denied one, which the server never sees', async () => {
    const client = await connectClient(path);
    const ok = await client.callTool({ name: 'search_repositories', arguments: { q: 'proxy' } });
    expect(ok.content).toEqual([{ type: 'text', text: 'found proxy' }]);
    const before = executed.length;
    await expect(client.callTool({ name: 'delete_repository', arguments: { repo: 'iron-proxy' } })).rejects.toMatchObject({ code: -32001 });
    await expect(client.callTool({ name: 'create_issue', arguments: { owner: 'evil', repo: 'iron-proxy', title: 't' } })).rejects.toMatchObject({ code: -32001 });
    await expect(client.callTool({ name: 'edit_files', arguments: { files: [{ path: 'src/a.ts' }] } })).rejects.toMatchObject({ code: -32001 });
    expect(executed.slice(before)).toEqual([]);
    const allowed = await client.callTool({ name: 'edit_files', arguments: { files: [{ path: 'docs/a.md' }] } });
    expect(allowed.content).toEqual([{ type: 'text', text: 'edited' }]);
    await client.close();
  });
});

describe('requests the SDK would not send', () => {
  it('denies a batch with one denied entry as a whole, answering each request', async () => {
    const before = received.length;
    const r = await rawPost(JSON.stringify([call(1, 'search_repositories', { q: 'a' }), call(2, 'delete_repository', { repo: 'x' })]), 'application/json');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual([
      { jsonrpc: '2.0', id: 1, error: { code: -32001, message: 'blocked by iron-proxy policy' } },
      { jsonrpc: '2.0', id: 2, error: { code: -32001, message: 'blocked by iron-proxy policy' } },
    ]);
    expect(received.length).toBe(before);
  });

  it.each([['text/plain'], ['application/json; charset=utf-8'], ['application/x-www-form-urlencoded'], [undefined]])(
    'inspects a call sent as %s (no content-type bypass)',
    async (contentType) => {
      const before = received.length;
      const r = await rawPost(JSON.stringify(call(9, 'delete_repository', { repo: 'x' })), contentType);
      expect(JSON.parse(r.text)).toEqual({ jsonrpc: '2.0', id: 9, error: { code: -32001, message: 'blocked by iron-proxy policy' } });
      expect(received.length).toBe(before);
    },
  );

  it('refuses a body that is not JSON-RPC instead of forwarding it', async () => {
    const before = received.length;
    const r = await rawPost('{"method":"tools/call","params":{"name":"delete_repository"}', 'application/json');
    expect(JSON.parse(r.text)).toMatchObject({ id: null, error: { code: -32001 } });
    expect(received.length).toBe(before);
    const audit = await proxy.waitForAudit((a) => a.reason === 'malformed_jsonrpc');
    expect(audit).toMatchObject({ action: 'reject', status_code: 200, rejected_by: 'mcp', mcp: { server: 'test-tools' } });
  });

  it('writes one audit entry per JSON-RPC message under the mcp group', async () => {
    await rawPost(JSON.stringify(call(11, 'search_repositories', { q: 'audited' })), 'application/json');
    const audit = await proxy.waitForAudit((a) => JSON.stringify(a.mcp ?? null).includes('audited'));
    expect(audit.mcp).toEqual({
      server: 'test-tools',
      messages: [{ direction: 'request', type: 'request', method: 'tools/call', tool: 'search_repositories', arguments: { q: 'audited' }, decision: 'allow' }],
    });
  });
});

describe('a long tools/list event stream', () => {
  const EVENTS = 200;
  let server: Server;
  let port: number;
  /** Resolves the wait for the client to have read event n. */
  let acked: (() => void) | undefined;

  beforeAll(async () => {
    // Streams 199 progress notifications, then the tools/list answer, each only after the client
    // said it read the one before: a proxy that buffered the stream would deliver nothing.
    server = createHttpServer((req, res) => {
      if (req.url === '/ack') {
        acked?.();
        res.end('ok');
        return;
      }
      req.resume();
      req.on('end', () => {
        void (async () => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          for (let i = 0; i < EVENTS - 1; i++) {
            const next = new Promise<void>((r) => (acked = r));
            res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: i } })}\n\n`);
            await next;
          }
          const tools = [{ name: 'allowed_tool' }, { name: 'hidden_tool' }];
          res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools } })}\n\n`);
        })();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });

  it('reaches the client event by event, the tools/list answer filtered', async () => {
    const dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port('http')}`, proxyTunnel: false });
    try {
      const r = await undiciFetch(`http://127.0.0.1:${port}/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        dispatcher,
      });
      expect(r.status, proxy.stdout().split('\n').filter((l) => l.includes('/stream')).join('\n')).toBe(200);
      const events: string[] = [];
      let buffer = '';
      const decoder = new TextDecoder();
      for await (const chunk of r.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          events.push(buffer.slice(0, i));
          buffer = buffer.slice(i + 2);
          // The acknowledgement goes straight to the server, not through the proxy.
          if (events.length < EVENTS) await fetch(`http://127.0.0.1:${port}/ack`).then((a) => a.text());
        }
      }
      expect(events, `${proxy.stdout()}\n${proxy.stderr()}`.split('\n').filter((l) => l.includes('stream') || l.includes('error')).join('\n')).toHaveLength(EVENTS);
      expect(events.at(-1)).toContain('allowed_tool');
      expect(events.at(-1)).not.toContain('hidden_tool');
      expect(events[0]).toBe(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 0 } })}`);
    } finally {
      await dispatcher.close();
    }
    const audit = await proxy.waitForAudit((a) => a.path === '/stream');
    expect((audit.mcp as { messages: unknown[] }).messages).toContainEqual({ direction: 'response', type: 'response', method: 'tools/list', decision: 'filtered', filtered: 1 });
  });
});
