/**
 * `judge` end to end: the built binary with an allowlist, three judges (on the fake Anthropic
 * API, on the fake OpenAI API, and one in shadow mode with a decision cache) and a `secrets`
 * entry after them, in front of the echo upstream. Allowed and denied requests, what the model
 * was sent (proxy tokens, never the real secret), the audit records, the provider connection
 * refused by the upstream guard, the load-time refusal of a judge placed after `secrets`, and a
 * search of everything the proxy wrote for the secrets and API keys.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  llmDecision,
  requireCommand,
  startDnsServer,
  startEchoServer,
  startFakeAnthropic,
  startFakeOpenAi,
  type DnsTestServer,
  type EchoServer,
  type FakeLlm,
} from '@proxy/test-kit';
import { curl, runCli, startProxyProcess, type CommandResult, type ProxyProcess } from './support/proxy-process.js';

const ENV = {
  ANTHROPIC_API_KEY: 'sk-ant-e2e-judge-key-4f9a2c',
  OPENAI_API_KEY: 'sk-openai-e2e-judge-key-7b1d3e',
  REAL_TOKEN: 'ghp_realRepositoryToken9c8b7a',
};

let echo: EchoServer;
let dns: DnsTestServer;
let anthropic: FakeLlm;
let openai: FakeLlm;
let proxy: ProxyProcess;
let proxyUrl: string;
let api: string;
let dir: string;
const cliRuns: CommandResult[] = [];
/** Output of proxies stopped before the leak search. */
const leakCheck: string[] = [];

/** The judges and the secret entry, as they stand in the config. */
const judges = (anthropicUrl: string, openaiUrl: string): string => `  - name: judge
    config:
      name: repo-guard
      rules:
        - host: "api.example.test"
          methods: ["POST", "PUT", "PATCH", "DELETE"]
      provider:
        type: anthropic
        model: claude-haiku-4-5-20251001
        api_key_env: ANTHROPIC_API_KEY
        base_url: "${anthropicUrl}"
      prompt: |
        Allow writes to the repository o/r. Deny anything touching "billing".
      timeout: 5s
  - name: judge
    config:
      name: slack-guard
      rules:
        - host: "api.example.test"
          paths: ["/slack/*"]
      provider:
        type: openai
        model: gpt-5.4-nano
        api_key_env: OPENAI_API_KEY
        base_url: "${openaiUrl}"
      prompt: Allow posts to the release channel only.
      fallback: skip
  - name: judge
    config:
      name: shadow-guard
      mode: shadow
      cache_ttl: 1m
      rules:
        - host: "api.example.test"
          paths: ["/shadow/*"]
      provider:
        type: anthropic
        model: claude-haiku-4-5-20251001
        api_key_env: ANTHROPIC_API_KEY
        base_url: "${anthropicUrl}"
      prompt: Deny anything touching billing.
`;

const secrets = `  - name: secrets
    config:
      secrets:
        - source: { type: env, var: REAL_TOKEN }
          replace:
            proxy_value: "proxy-tok-judge-123"
            match_headers: ["Authorization"]
          rules:
            - host: "api.example.test"
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'judge-e2e-'));
  echo = await startEchoServer({ host: '127.0.0.1' });
  dns = await startDnsServer({ records: { 'api.example.test': { A: ['127.0.0.1'] } } });
  anthropic = await startFakeAnthropic({
    apiKey: ENV.ANTHROPIC_API_KEY,
    responder: (call) => ({ text: call.user.includes('billing') ? llmDecision('DENY', 'touches billing') : llmDecision('ALLOW', 'repository o/r') }),
  });
  openai = await startFakeOpenAi({
    apiKey: ENV.OPENAI_API_KEY,
    responder: (call) => ({ text: call.user.includes('/slack/dm') ? llmDecision('DENY', 'direct message') : llmDecision('ALLOW', 'release channel') }),
  });
  proxy = await startProxyProcess(
    `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test:${echo.port}"]
${judges(anthropic.url, openai.url)}${secrets}`,
    { env: ENV },
  );
  proxyUrl = `http://127.0.0.1:${proxy.port('http')}`;
  api = `http://api.example.test:${echo.port}`;
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([echo?.close(), dns?.close(), anthropic?.close(), openai?.close()]);
  await rm(dir, { recursive: true, force: true });
});

type TraceEntry = { name: string; annotations?: Record<string, unknown> };

describe('judge through the proxy', () => {
  it('forwards a write the model allows; the model saw the proxy token, the upstream the real one', async () => {
    const before = proxy.audits().length;
    const r = await curl(['-x', proxyUrl, '-H', 'Authorization: Bearer proxy-tok-judge-123', '-H', 'Content-Type: application/json', '-d', '{"title":"bug"}', '-w', '\n%{http_code}', `${api}/repos/o/r/issues`]);
    expect(r.stdout.split('\n').at(-1)).toBe('200');
    const seen = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('\n'))) as { headers: Record<string, string>; body: string };
    expect(seen.headers.authorization).toBe(`Bearer ${ENV.REAL_TOKEN}`);
    expect(seen.body).toBe('{"title":"bug"}');

    const call = anthropic.calls.at(-1)!;
    const envelope = JSON.parse(call.user) as { method: string; url: string; host: string; headers: { name: string; value: string }[]; body: string };
    expect(envelope).toMatchObject({ method: 'POST', url: '/repos/o/r/issues', host: `api.example.test:${echo.port}`, body: '{"title":"bug"}' });
    expect(envelope.headers).toContainEqual({ name: 'Authorization', value: 'Bearer proxy-tok-judge-123' });
    expect(call.user).not.toContain(ENV.REAL_TOKEN);
    expect(call.system).toContain(JSON.stringify('Allow writes to the repository o/r. Deny anything touching "billing".\n'));
    expect(call.apiKey).toBe(ENV.ANTHROPIC_API_KEY);

    const audit = await proxy.waitForAudit((a) => a.path === '/repos/o/r/issues', before);
    expect(audit).toMatchObject({ action: 'allow', status_code: 200 });
    const entry = (audit.request_transforms as TraceEntry[]).find((t) => t.name === 'repo-guard');
    expect(entry?.annotations).toMatchObject({ 'judge.instance': 'repo-guard', 'judge.decision': 'ALLOW', 'judge.reason': 'repository o/r', 'judge.model': 'claude-haiku-4-5-20251001' });
  });

  it('refuses with 403 a write the model denies; the upstream never sees it', async () => {
    const before = proxy.audits().length;
    const upstreamBefore = echo.requests.length;
    const r = await curl(['-x', proxyUrl, '-X', 'POST', '-d', 'plan=enterprise', '-w', '\n%{http_code}', `${api}/billing/plan`]);
    expect(r.stdout.split('\n').at(-1)).toBe('403');
    expect(r.stdout).toContain('judge "repo-guard" denied');
    expect(echo.requests.length).toBe(upstreamBefore);
    const audit = await proxy.waitForAudit((a) => a.path === '/billing/plan', before);
    expect(audit).toMatchObject({ action: 'reject', status_code: 403, rejected_by: 'repo-guard', reason: 'judge_denied' });
  });

  it('runs two instances independently: the OpenAI judge denies a DM the Anthropic judge allowed', async () => {
    const before = proxy.audits().length;
    const r = await curl(['-x', proxyUrl, '-d', 'text=hi', '-o', '/dev/null', '-w', '%{http_code}', `${api}/slack/dm`]);
    expect(r.stdout).toBe('403');
    const audit = await proxy.waitForAudit((a) => a.path === '/slack/dm', before);
    expect(audit).toMatchObject({ rejected_by: 'slack-guard', reason: 'judge_denied' });
    const names = (audit.request_transforms as TraceEntry[]).map((t) => t.name);
    expect(names).toEqual(['allowlist', 'repo-guard', 'slack-guard']);
    expect(openai.calls.at(-1)!.apiKey).toBe(ENV.OPENAI_API_KEY);
  });

  it('in shadow mode, annotates a deny but forwards; a repeated request is answered from the cache', async () => {
    const calls = anthropic.calls.length;
    const before = proxy.audits().length;
    for (let i = 0; i < 2; i++) {
      const r = await curl(['-x', proxyUrl, '-o', '/dev/null', '-w', '%{http_code}', `${api}/shadow/billing`]);
      expect(r.stdout).toBe('200');
    }
    expect(anthropic.calls.length).toBe(calls + 1);
    await proxy.waitForAudit((a) => a.path === '/shadow/billing', before + 1);
    const audits = proxy.audits().slice(before).filter((a) => a.path === '/shadow/billing');
    const entries = audits.map((a) => (a.request_transforms as TraceEntry[]).find((t) => t.name === 'shadow-guard')?.annotations);
    expect(entries[0]).toMatchObject({ 'judge.shadow': true, 'judge.decision': 'DENY', 'judge.reason': 'touches billing' });
    expect(entries[0]).not.toHaveProperty('judge.cached');
    expect(entries[1]).toMatchObject({ 'judge.shadow': true, 'judge.decision': 'DENY', 'judge.cached': true });
    expect(audits.map((a) => a.action)).toEqual(['allow', 'allow']);
  });

  it('leaves requests outside its rules alone: no LLM call', async () => {
    const calls = anthropic.calls.length + openai.calls.length;
    const r = await curl(['-x', proxyUrl, '-o', '/dev/null', '-w', '%{http_code}', `${api}/repos/o/r`]);
    expect(r.stdout).toBe('200');
    expect(anthropic.calls.length + openai.calls.length).toBe(calls);
  });
});

describe('the provider connection', () => {
  it('goes through the upstream guard: a provider on a denied address is never dialled, the fallback refuses', async () => {
    // Default upstream_deny_cidrs: loopback, where the fake provider listens, is denied.
    const guarded = await startProxyProcess(
      `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test:${echo.port}"]
${judges(anthropic.url, openai.url)}`,
      { env: ENV },
    );
    try {
      const calls = anthropic.calls.length;
      const r = await curl(['-x', `http://127.0.0.1:${guarded.port('http')}`, '-d', 'x=1', '-o', '/dev/null', '-w', '%{http_code}', `${api}/repos/o/r/issues`]);
      expect(r.stdout).toBe('403');
      const audit = await guarded.waitForAudit((a) => a.path === '/repos/o/r/issues');
      expect(audit).toMatchObject({ rejected_by: 'repo-guard', reason: 'judge_fallback' });
      const entry = (audit.request_transforms as TraceEntry[]).find((t) => t.name === 'repo-guard');
      expect(entry?.annotations).toMatchObject({ 'judge.decision': 'FALLBACK_DENY', 'judge.fallback_applied': 'deny' });
      expect(String(entry?.annotations?.['judge.reason'])).toMatch(/^adapter error: .*(denied|deny)/i);
      expect(anthropic.calls.length).toBe(calls);
    } finally {
      await guarded.stop();
      leakCheck.push(guarded.stdout(), guarded.stderr());
    }
  });
});

describe('proxy validate', () => {
  it('refuses a judge placed after secrets, and a judge name used twice, with file, line and field', async () => {
    const file = join(dir, 'bad-order.yaml');
    await writeFile(file, `proxy:\n  http_listen: "127.0.0.1:0"\ntransforms:\n${secrets}${judges('http://127.0.0.1:1', 'http://127.0.0.1:1').replace('name: slack-guard', 'name: repo-guard')}`);
    const r = await runCli(['validate', '--config', file], { PATH: process.env.PATH ?? '', ...ENV });
    cliRuns.push(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad-order\.yaml:13:\d+: transforms\[1\]\.name: a judge must come before transforms that inject credentials \(transforms\[0\] is secrets\)/);
    expect(r.stderr).toMatch(/bad-order\.yaml:\d+:\d+: transforms\[2\]\.config\.name: judge name "repo-guard" is already used by transforms\[1\]/);
  });

  it('loads the judges placed before secrets', async () => {
    const file = join(dir, 'good.yaml');
    await writeFile(file, `proxy:\n  http_listen: "127.0.0.1:0"\ntransforms:\n${judges('http://127.0.0.1:1', 'http://127.0.0.1:1')}${secrets}`);
    const r = await runCli(['validate', '--config', file], { PATH: process.env.PATH ?? '', ...ENV });
    cliRuns.push(r);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('secrets and API keys in what the proxy wrote', () => {
  it('appear nowhere: not in any log line, audit record or CLI output', () => {
    // What it greps was made by the curl requests above, skipped where curl is missing.
    requireCommand('curl');
    const written = [proxy.stdout(), proxy.stderr(), ...leakCheck, ...cliRuns.flatMap((r) => [r.stdout, r.stderr])].join('\n');
    expect(written).toContain('"msg":"request"');
    for (const secret of Object.values(ENV)) {
      for (const spelling of [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]) {
        expect(written.includes(spelling), `secret ${secret} in the proxy's output`).toBe(false);
      }
    }
  });
});
