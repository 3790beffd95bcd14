import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '@proxy/core';
import { loadProxyConfig } from './config-loader.js';

/** The issues of loading `yaml` with the real registry; fails when it loads. */
async function issuesOf(yaml: string): Promise<readonly ConfigIssue[]> {
  try {
    await loadProxyConfig({ text: yaml, name: 'proxy.yaml' });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

/** `line:column path: message` of each issue. */
const lines = (issues: readonly ConfigIssue[]): string[] => issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);

const HEAD = 'proxy:\n  http_listen: "127.0.0.1:0"\n';

describe("iron-proxy's features this version does not build", () => {
  it('names each top-level section as an iron-proxy feature that is not available, at its line', async () => {
    const issues = await issuesOf(`${HEAD}postgres:
  upstreams: []
control_plane:
  poll_interval: 10s
`);
    expect(lines(issues)).toEqual([
      `3:1 postgres: iron-proxy's "postgres" section (a PostgreSQL proxy) is not available in this version; remove it`,
      `5:1 control_plane: iron-proxy's "control_plane" section (managed mode, synced from a control plane) is not available in this version; remove it`,
    ]);
  });

  it('says a transform named postgres or control_plane is an iron-proxy section that is not available, and where mcp_gateway goes', async () => {
    const issues = await issuesOf(`${HEAD}transforms:
  - name: postgres
    config: {}
  - name: mcp_gateway
  - name: control_plane
`);
    expect(lines(issues)).toEqual([
      '4:11 transforms[0].name: "postgres" is not a transform but a top-level section in iron-proxy (a PostgreSQL proxy), and it is not available in this version',
      '6:11 transforms[1].name: "mcp_gateway" is not a transform but a top-level section (the MCP gateway); write it as "mcp_gateway:" at the top level of the file',
      '7:11 transforms[2].name: "control_plane" is not a transform but a top-level section in iron-proxy (managed mode, synced from a control plane), and it is not available in this version',
    ]);
  });

  it.each([
    ['control_plane', 'value: "x"', 'a value sent by the control plane'],
    ['vault_kv', 'mount: secret\n            path: services/openai', 'a HashiCorp Vault KV secret'],
    ['token_broker', 'credential_id: c1', 'a token from iron-token-broker'],
  ])('names the secret source type %s as an iron-proxy source that is not available, at its type', async (type, fields, what) => {
    const issues = await issuesOf(`${HEAD}transforms:
  - name: secrets
    config:
      secrets:
        - source:
            type: ${type}
            ${fields}
          inject: { header: Authorization }
          rules: [{ host: api.example.com }]
`);
    expect(lines(issues)).toEqual([
      `8:19 transforms[0].config.secrets[0].source.type: secret source type "${type}" (${what}) exists in iron-proxy but is not available in this version ` +
        '(available: env, file, aws_sm, aws_ssm, 1password_connect, 1password; a third-party source is named by its package name)',
    ]);
  });

  it('still lists the available types for a type iron-proxy does not have either', async () => {
    const issues = await issuesOf(`${HEAD}transforms:
  - name: secrets
    config:
      secrets:
        - source: { type: vault, path: x }
          inject: { header: Authorization }
`);
    expect(issues.map((i) => [i.path, i.message])).toContainEqual([
      'transforms[0].config.secrets[0].source.type',
      'must be one of: env, file, aws_sm, aws_ssm, 1password_connect, 1password',
    ]);
  });

  it('still reports a third-party source named by package name as that package (not as an iron-proxy feature)', async () => {
    const issues = await issuesOf(`${HEAD}transforms:
  - name: secrets
    config:
      secrets:
        - source: { type: "@acme/vault_kv", path: x }
          inject: { header: Authorization }
`);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe('transforms[0].config.secrets[0].source.type');
    expect(issues[0]?.message).toMatch(/^secret source package "@acme\/vault_kv" is not installed/);
  });

  it('reports every problem of the file at once, the unavailable features among the others', async () => {
    const issues = await issuesOf(`${HEAD}postgres: {}
transforms:
  - name: allowlist
    config: { domans: [a.com] }
`);
    expect(issues.map((i) => `${i.line} ${i.path}`)).toEqual(['3 postgres', '6 transforms[0].config.domans']);
  });
});

describe('a secrets entry with both inject and replace', () => {
  it('is refused at replace, saying which field does what so the operator knows which to remove', async () => {
    const issues = await issuesOf(`${HEAD}transforms:
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: API_KEY }
          inject: { header: Authorization }
          replace: { proxy_value: proxy-key }
`);
    expect(lines(issues)).toEqual([
      '9:11 transforms[0].config.secrets[0].replace: cannot be used together with "inject"; remove one of them ' +
        '(keep "inject" to add the secret to every request the rules match, or keep "replace" (or the older top-level proxy_value) to swap the placeholder the workload sends)',
    ]);
  });

  it('is refused at the older top-level proxy_value next to inject, and at one next to replace', async () => {
    const issues = await issuesOf(`${HEAD}transforms:
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: API_KEY }
          inject: { header: Authorization }
          proxy_value: proxy-key
        - source: { type: env, var: API_KEY }
          replace: { proxy_value: proxy-key }
          match_body: true
`);
    expect(issues.map((i) => `${i.line} ${i.path}: ${i.message.split(';')[0]}`)).toEqual([
      '9 transforms[0].config.secrets[0].proxy_value: cannot be used together with "inject"',
      '12 transforms[0].config.secrets[1].match_body: cannot be used together with "replace"',
    ]);
  });
});
