import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runTransform, validateTransformConfig, type TestResponseInit } from '@proxy/core/testing';
import { mcpConfigProblems, mcpPolicy } from '../src/index.js';
import { compileArgumentMatcher } from '../src/argument-matcher.js';
import { parseJsonRpc } from '../src/json-rpc.js';
import { ToolsListEventFilter, type ToolsListOutcome } from '../src/tools-list-filter.js';

const config = {
  error: { code: -32001, message: 'blocked by iron-proxy policy' },
  servers: [
    {
      name: 'github',
      rules: [{ host: 'mcp.example.test', paths: ['/mcp', '/mcp/*'] }],
      tools: [
        { name: 'search_repositories', when: [] },
        {
          name: 'create_issue',
          when: [
            { path: 'owner', equals: 'ironsh' },
            { path: 'repo', in: ['iron-proxy', 'tunis-v2'] },
            { path: 'title', matches: '^\\[bot\\]' },
          ],
        },
        { name: 'edit_files', when: [{ path: 'files.0.path', matches: '^docs/' }] },
      ],
    },
  ],
};

const call = (id: number | string | null, name: string, args?: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

/** Runs the policy on a POST to the governed server. */
const post = (body: unknown, headers: Record<string, string> = { 'Content-Type': 'application/json' }, response?: TestResponseInit) =>
  runTransform(mcpPolicy, config, { method: 'POST', host: 'mcp.example.test', path: '/mcp', headers, body: typeof body === 'string' ? body : JSON.stringify(body) }, response === undefined ? {} : { response });

const mcpGroup = (result: Awaited<ReturnType<typeof post>>) => result.audit.mcp as { server: string; messages: Record<string, unknown>[] };

describe('tools/call', () => {
  it('lets an allowed tool through and records it', async () => {
    const result = await post(call(1, 'search_repositories', { q: 'proxy' }));
    expect(result.decision.action).toBe('continue');
    expect(mcpGroup(result)).toEqual({
      server: 'github',
      messages: [{ direction: 'request', type: 'request', method: 'tools/call', tool: 'search_repositories', arguments: { q: 'proxy' }, decision: 'allow' }],
    });
    expect(result.request.headers.get('accept-encoding')).toBe('identity');
  });

  it('denies a tool not listed with the configured JSON-RPC error, HTTP 200, keeping the id', async () => {
    const result = await post(call(42, 'delete_repository', { owner: 'x' }));
    expect(result.decision).toEqual({
      action: 'reject',
      status: 200,
      reason: 'tool_not_allowed',
      message: JSON.stringify({ jsonrpc: '2.0', id: 42, error: { code: -32001, message: 'blocked by iron-proxy policy' } }),
      contentType: 'application/json',
    });
    expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'mcp', reason: 'tool_not_allowed', status_code: 200 });
    expect(mcpGroup(result).messages[0]).toMatchObject({ tool: 'delete_repository', decision: 'deny', reason: 'tool_not_allowed' });
  });

  it.each([
    ['all matchers pass', { owner: 'ironsh', repo: 'tunis-v2', title: '[bot] fix' }, true],
    ['equals fails', { owner: 'evil', repo: 'tunis-v2', title: '[bot] fix' }, false],
    ['in fails', { owner: 'ironsh', repo: 'other', title: '[bot] fix' }, false],
    ['matches fails', { owner: 'ironsh', repo: 'iron-proxy', title: 'fix' }, false],
    ['a matched value of another type', { owner: 'ironsh', repo: 'iron-proxy', title: ['[bot] fix'] }, false],
    ['a missing argument', { owner: 'ironsh', title: '[bot] x' }, false],
    ['no arguments', undefined, false],
  ])('checks arguments: %s', async (_name, args, allowed) => {
    const result = await post(call('a', 'create_issue', args));
    expect(result.decision.action).toBe(allowed ? 'continue' : 'reject');
    if (!allowed) expect(result.decision).toMatchObject({ reason: 'argument_constraint' });
  });

  it('indexes arrays with numeric path segments', async () => {
    expect((await post(call(1, 'edit_files', { files: [{ path: 'docs/a.md' }] }))).decision.action).toBe('continue');
    expect((await post(call(1, 'edit_files', { files: [{ path: 'src/a.ts' }, { path: 'docs/a.md' }] }))).decision.action).toBe('reject');
  });

  it('denies a whole batch when one entry is denied, answering every request of it', async () => {
    const result = await post([call(1, 'search_repositories', {}), { jsonrpc: '2.0', method: 'notifications/initialized' }, call(2, 'delete_repository', {})]);
    expect(result.decision).toMatchObject({ action: 'reject', status: 200, reason: 'tool_not_allowed' });
    const errors = JSON.parse((result.decision as { message: string }).message) as { id: number }[];
    expect(errors.map((e) => e.id)).toEqual([1, 2]);
    expect(mcpGroup(result).messages.map((m) => m.decision)).toEqual(['allow', 'allow', 'deny']);
  });

  it.each([
    ['text/plain', { 'Content-Type': 'text/plain' }],
    ['a charset parameter', { 'Content-Type': 'application/json; charset=utf-8' }],
    ['no Content-Type', {}],
    ['an odd media type', { 'Content-Type': 'application/x-www-form-urlencoded' }],
  ])('inspects the body whatever its Content-Type: %s', async (_name, headers) => {
    const result = await post(call(7, 'delete_repository', {}), headers);
    expect(result.decision).toMatchObject({ action: 'reject', reason: 'tool_not_allowed' });
  });

  it.each([
    ['not JSON', 'tools/call delete_repository'],
    ['an empty batch', '[]'],
    ['JSON that is not JSON-RPC', '{"method":"tools/call"}'],
    ['a bad id', '{"jsonrpc":"2.0","id":{"x":1},"method":"tools/call","params":{"name":"search_repositories"}}'],
    ['an empty body', ''],
  ])('refuses a body that is not JSON-RPC (%s) with malformed_jsonrpc and a null id', async (_name, body) => {
    const result = await post(body);
    expect(result.decision).toMatchObject({ action: 'reject', status: 200, reason: 'malformed_jsonrpc' });
    expect(JSON.parse((result.decision as { message: string }).message)).toMatchObject({ id: null, error: { code: -32001 } });
  });

  it('refuses a tools/call without a tool name as malformed', async () => {
    const result = await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { arguments: {} } });
    expect(result.decision).toMatchObject({ reason: 'malformed_jsonrpc' });
  });

  it('refuses a body over the body limit (oversize_body)', async () => {
    const body = JSON.stringify(call(1, 'search_repositories', { q: 'x'.repeat(2000) }));
    const result = await runTransform(mcpPolicy, config, { method: 'POST', host: 'mcp.example.test', path: '/mcp', body, maxBodyBytes: 100 });
    expect(result.decision).toMatchObject({ action: 'reject', status: 200, reason: 'oversize_body' });
  });

  it('cuts long arguments in the audit record at 61 bytes and a UTF-8 boundary', async () => {
    const result = await post(call(1, 'search_repositories', { q: 'é'.repeat(100) }));
    const record = mcpGroup(result).messages[0]!;
    expect(record.arguments).toBeUndefined();
    expect(record.raw_arguments).toMatch(/^\{"q":"é+\.\.\.$/);
    expect(Buffer.byteLength(String(record.raw_arguments))).toBeLessThanOrEqual(64);
  });

  it('leaves other servers, other paths and GET alone', async () => {
    const other = await runTransform(mcpPolicy, config, { method: 'POST', host: 'other.test', path: '/mcp', body: JSON.stringify(call(1, 'x')) });
    expect(other.decision.action).toBe('continue');
    expect(other.audit.mcp).toBeUndefined();
    const get = await runTransform(mcpPolicy, config, { method: 'GET', host: 'mcp.example.test', path: '/mcp' });
    expect(get.decision.action).toBe('continue');
  });
});

describe('tools/list', () => {
  const list = {
    jsonrpc: '2.0',
    id: 5,
    result: { tools: [{ name: 'search_repositories' }, { name: 'delete_repository' }, { name: 'create_issue' }, { description: 'no name' }] },
  };

  it('removes tools that are not allowed from a JSON answer to a tools/list request', async () => {
    const result = await post({ jsonrpc: '2.0', id: 5, method: 'tools/list' }, undefined, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(list) });
    const sent = JSON.parse((await result.response!.body.read()).toString()) as typeof list;
    expect(sent.result.tools.map((t) => (t as { name?: string }).name)).toEqual(['search_repositories', 'create_issue', undefined]);
    expect(mcpGroup(result).messages[1]).toEqual({ direction: 'response', type: 'response', method: 'tools/list', decision: 'filtered', filtered: 1 });
  });

  it('filters only answers to ids of tools/list requests of this exchange', async () => {
    const result = await post({ jsonrpc: '2.0', id: 6, method: 'tools/list' }, undefined, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(list) });
    expect(result.response!.body.buffered).toBe(true);
    expect(JSON.parse((await result.response!.body.read()).toString())).toEqual(list);
  });

  it('refuses an answer the server compressed although asked not to (it could not be filtered)', async () => {
    const result = await post({ jsonrpc: '2.0', id: 5, method: 'tools/list' }, undefined, { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: 'x' });
    expect(result.responseDecision).toMatchObject({ action: 'reject', status: 502, reason: 'mcp_unfilterable_response' });
  });
});

describe('ToolsListEventFilter', () => {
  const run = async (chunks: string[], listIds = ['5']): Promise<{ out: string; outcomes: ToolsListOutcome[] }> => {
    const outcomes: ToolsListOutcome[] = [];
    const filter = new ToolsListEventFilter({ listIds: new Set(listIds), visible: (n) => n !== 'secret_tool', onOutcome: (o) => outcomes.push(o), maxEventBytes: 1024 });
    const parts: Buffer[] = [];
    for await (const part of Readable.from(chunks.map((c) => Buffer.from(c))).pipe(filter)) parts.push(part as Buffer);
    return { out: Buffer.concat(parts).toString(), outcomes };
  };
  const answer = JSON.stringify({ jsonrpc: '2.0', id: 5, result: { tools: [{ name: 'ok_tool' }, { name: 'secret_tool' }] } });

  it('passes other events through byte for byte and filters the tools/list answer, keeping id and event fields', async () => {
    const { out, outcomes } = await run([`: comment\n\nevent: message\nid: e1\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n`, `event: message\nid: e2\ndata: ${answer}\n\n`]);
    const events = out.split('\n\n');
    expect(events[0]).toBe(': comment');
    expect(events[1]).toBe('event: message\nid: e1\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}');
    expect(events[2]).toBe(`event: message\nid: e2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 5, result: { tools: [{ name: 'ok_tool' }] } })}`);
    expect(outcomes).toEqual([{ id: 5, filtered: 1 }]);
  });

  it('reassembles an event split across chunks, in the middle of a character too, and multi-line data', async () => {
    // Data lines are joined with a newline, which JSON allows between tokens: split after a comma.
    const cut = answer.indexOf(',') + 1;
    const text = `data: ${answer.slice(0, cut)}\ndata: ${answer.slice(cut)}\n\n`;
    const bytes = Buffer.from(text.replace('ok_tool', 'ok_tööl'));
    const at = bytes.indexOf('ö') + 1;
    const outcomes: ToolsListOutcome[] = [];
    const filter = new ToolsListEventFilter({ listIds: new Set(['5']), visible: (n) => n !== 'secret_tool', onOutcome: (o) => outcomes.push(o), maxEventBytes: 1024 });
    const parts: Buffer[] = [];
    // The middle cut falls inside the two bytes of an 'ö'.
    for await (const part of Readable.from([bytes.subarray(0, 9), bytes.subarray(9, at), bytes.subarray(at)]).pipe(filter)) parts.push(part as Buffer);
    const out = Buffer.concat(parts).toString();
    expect(out).toContain('ok_tööl');
    expect(out).not.toContain('secret_tool');
    expect(outcomes).toEqual([{ id: 5, filtered: 1 }]);
  });

  it('handles CRLF line endings', async () => {
    const { out } = await run([`id: 1\r\ndata: ${answer}\r\n\r\n`]);
    expect(out).not.toContain('secret_tool');
    expect(out.startsWith('id: 1\n')).toBe(true);
  });

  it('leaves answers to other ids untouched', async () => {
    const { out } = await run([`data: ${answer}\n\n`], ['99']);
    expect(out).toBe(`data: ${answer}\n\n`);
  });

  it('ends the stream with an error rather than pass an oversize event on unfiltered', async () => {
    await expect(run([`data: ${'x'.repeat(2000)}`])).rejects.toThrow(/exceeds 1024 bytes/);
  });
});

describe('config', () => {
  it('validates iron-proxy\'s example block and applies the defaults', () => {
    expect(validateTransformConfig(mcpPolicy, { servers: [{ name: 'github', rules: [{ host: 'mcp.github.com', paths: ['/mcp', '/mcp/*'] }], tools: [{ name: 'x' }] }] })).toEqual([]);
  });

  it('refuses a matcher with two conditions and a server without rules', () => {
    expect(validateTransformConfig(mcpPolicy, { servers: [{ name: 's', rules: [] }] }).map((i) => i.path)).toContain('servers[0].rules');
    expect(validateTransformConfig(mcpPolicy, { servers: [{ name: 's', rules: [{ host: 'a' }], tools: [{ name: 't', when: [{ path: 'a', equals: 1, in: [1] }] }] }] }).length).toBeGreaterThan(0);
  });

  it('reports expressions RE2 refuses with their field path', () => {
    const problems = mcpConfigProblems({ error: config.error, servers: [{ name: 's', rules: [{ host: 'a' }], tools: [{ name: 't', when: [{ path: 'a', matches: '(?<=x)y' }] }] }] });
    expect(problems).toEqual([{ path: ['servers', 0, 'tools', 0, 'when', 0, 'matches'], message: expect.stringContaining('not an RE2 regular expression') }]);
  });
});

describe('argument matchers', () => {
  it('runs in linear time on input crafted against backtracking engines', () => {
    const matcher = compileArgumentMatcher({ path: 'v', matches: '^(a+)+$' });
    // A backtracking engine would not finish this within the test's timeout (or for years).
    expect(matcher({ v: `${'a'.repeat(5000)}!` })).toBe(false);
  });

  it('compares numbers by value and objects by content, and never follows the prototype', () => {
    expect(compileArgumentMatcher({ path: 'n', equals: 1 })({ n: 1.0 })).toBe(true);
    expect(compileArgumentMatcher({ path: 'o', equals: { a: [1, 2] } })({ o: { a: [1, 2] } })).toBe(true);
    expect(compileArgumentMatcher({ path: 'o', equals: { a: [1, 2] } })({ o: { a: [2, 1] } })).toBe(false);
    expect(compileArgumentMatcher({ path: 'constructor.name', equals: 'Object' })({})).toBe(false);
  });

  it('parses JSON-RPC kinds', () => {
    expect(parseJsonRpc('{"jsonrpc":"2.0","id":1,"result":{}}')?.messages[0]?.kind).toBe('response');
    expect(parseJsonRpc('{"jsonrpc":"2.0","method":"x"}')?.messages[0]?.kind).toBe('notification');
    expect(parseJsonRpc('{"jsonrpc":"1.0","method":"x"}')).toBeUndefined();
  });
});
