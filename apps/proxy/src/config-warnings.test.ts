import { describe, expect, it } from 'vitest';
import { defineTransform } from '@proxy/core';
import { parseConfigText, validateConfig } from '@proxy/config';
import { configWarnings, type ConfigWarning } from './config-warnings.js';
import { builtinSecretSources, builtinTransforms } from './registry.js';
import { loadProxyConfig } from './config-loader.js';

/** The warnings of a config written as YAML (built-in transforms only). */
async function warningsOf(yaml: string): Promise<ConfigWarning[]> {
  return configWarnings(await loadProxyConfig({ text: yaml, name: 'proxy.yaml' }));
}

/** `line path` of each warning, to compare where they point. */
const where = (warnings: readonly ConfigWarning[]): string[] => warnings.map((w) => `${w.line ?? '-'} ${w.path}`);

const LISTEN = 'proxy:\n  http_listen: "127.0.0.1:0"\n';

describe('configWarnings', () => {
  it('has nothing to say about an allowlist naming its hosts and a scoped secret', async () => {
    const warnings = await warningsOf(`${LISTEN}transforms:
  - name: allowlist
    config:
      domains: ["api.example.com"]
      cidrs: ["10.1.0.0/16"]
      rules:
        - host: "*.example.org"
          methods: [GET]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: TOKEN }
          inject: { header: Authorization }
          rules:
            - host: api.example.com
`);
    expect(warnings).toEqual([]);
  });

  it('says mcp_gateway routes apply to nothing without an mcp server, and is quiet with one', async () => {
    const allowlist = 'transforms:\n  - name: allowlist\n    config:\n      domains: ["*.internal.test", "mcp.example.com"]\n';
    const gateway = `mcp_gateway:
  routes:
    - name: tools
      rules: [{ host: tools.internal.test }]
      upstream: https://mcp.example.com/mcp
`;
    const without = await warningsOf(`${LISTEN}${allowlist}${gateway}`);
    expect(where(without)).toEqual(['8 mcp_gateway.routes']);
    expect(without[0]!.message).toContain('no route applies');
    const withServer = await warningsOf(`${LISTEN}${allowlist}mcp:\n  servers:\n    - name: tools\n      rules: [{ host: "*.internal.test" }]\n${gateway}`);
    expect(withServer).toEqual([]);
  });

  describe('an open proxy', () => {
    it('is named when no transform decides destinations, at the listener the workload steers', async () => {
      const warnings = await warningsOf(`${LISTEN}transforms:
  - name: header_allowlist
    config:
      headers: ["Accept"]
`);
      expect(where(warnings)).toEqual(['2 proxy.http_listen']);
      expect(warnings[0]).toMatchObject({ file: 'proxy.yaml', column: 16 });
      expect(warnings[0]?.message).toContain('no transform decides destinations');
      expect(warnings[0]?.message).toContain('requests on proxy.http_listen are forwarded to any host outside proxy.upstream_deny_cidrs, an open proxy');
    });

    it('lists every listener on which the workload chooses the destination', async () => {
      const warnings = await warningsOf(`proxy:
  http_listen: "127.0.0.1:0"
  tunnel_listen: "127.0.0.1:0"
  reverse:
    - listen: "127.0.0.1:0"
      upstream_host: "api.example.com"
    - listen: "127.0.0.1:0"
      host_header: "X-Target"
tls:
  mode: sni-only
`);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.message).toContain(
        'requests on proxy.http_listen, proxy.https_listen, proxy.tunnel_listen, proxy.reverse[1] (upstream named by the X-Target header) are forwarded',
      );
    });

    it('is not named for reverse listeners pinned to their upstream', async () => {
      expect(
        await warningsOf(`proxy:
  reverse:
    - listen: "127.0.0.1:0"
      upstream_host: "api.example.com"
`),
      ).toEqual([]);
    });

    it('is named for a reverse listener whose upstream a header selects', async () => {
      const warnings = await warningsOf(`proxy:
  reverse:
    - listen: "127.0.0.1:0"
      upstream_host: "api.example.com"
    - listen: "127.0.0.1:0"
`);
      expect(where(warnings)).toEqual(['5 proxy.reverse[1]']);
      expect(warnings[0]?.message).toContain('proxy.reverse[1] (upstream named by the X-Upstream-Host header)');
    });

    it('is named when every allowlist is in warn mode, besides the warn-mode warning itself', async () => {
      const warnings = await warningsOf(`${LISTEN}transforms:
  - name: allowlist
    config:
      domains: ["api.example.com"]
      warn: true
`);
      expect(where(warnings)).toEqual(['2 proxy.http_listen', '7 transforms[0].config.warn']);
      expect(warnings[1]?.message).toContain('warn mode and refuses nothing');
    });

    it('is not named when another allowlist refuses', async () => {
      const warnings = await warningsOf(`${LISTEN}transforms:
  - name: allowlist
    config:
      domains: ["api.example.com"]
      warn: true
  - name: allowlist
    config:
      domains: ["api.example.com"]
`);
      expect(where(warnings)).toEqual(['7 transforms[0].config.warn']);
    });

    it('is not named when a third-party transform declares that it decides destinations', async () => {
      const decides = (decidesDestinations: boolean | undefined) =>
        defineTransform({ name: '@acme/egress-policy', schema: { type: 'object' }, ...(decidesDestinations === undefined ? {} : { decidesDestinations }), create: () => ({}) });
      const yaml = `${LISTEN}transforms:\n  - name: "@acme/egress-policy"\n`;
      const warningsWith = (definition: ReturnType<typeof decides>): ConfigWarning[] => {
        const registry = { transforms: new Map([...builtinTransforms, [definition.name, definition]]), secretSources: builtinSecretSources };
        const document = parseConfigText(yaml, 'proxy.yaml');
        return configWarnings({ document, config: validateConfig(document, registry), registry });
      };
      expect(warningsWith(decides(true))).toEqual([]);
      expect(where(warningsWith(decides(undefined)))).toEqual(['2 proxy.http_listen']);
    });
  });

  describe('a wildcard allowlist', () => {
    it.each([
      ['domains: ["api.example.com", "*"]', 'transforms[0].config.domains[1]'],
      ['cidrs: ["0.0.0.0/0"]', 'transforms[0].config.cidrs[0]'],
      ['cidrs: ["::/0"]', 'transforms[0].config.cidrs[0]'],
      ['rules: [{ host: "*", methods: [GET] }]', 'transforms[0].config.rules[0].host'],
      ['rules: [{ cidr: "::ffff:0.0.0.0/96" }]', 'transforms[0].config.rules[0].cidr'],
    ])('%s with the default deny list: private networks are reachable', async (entry, path) => {
      const warnings = await warningsOf(`${LISTEN}transforms:\n  - name: allowlist\n    config:\n      ${entry}\n`);
      expect(where(warnings)).toEqual([`6 ${path}`]);
      expect(warnings[0]?.message).toBe(
        'this allowlist permits every destination and proxy.upstream_deny_cidrs does not deny all private networks, so workloads can reach them: ' +
          'add 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (and fc00::/7 for IPv6 unique local addresses) to proxy.upstream_deny_cidrs unless they need them',
      );
    });

    it('names only the private networks the deny list leaves reachable', async () => {
      const warnings = await warningsOf(`proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: ["10.0.0.0/8", "192.168.0.0/16", "fc00::/7"]
transforms:
  - name: allowlist
    config:
      domains: ["*"]
`);
      expect(warnings[0]?.message).toContain('so workloads can reach them: add 172.16.0.0/12 to proxy.upstream_deny_cidrs');
    });

    it('is fine with a deny list holding every private network', async () => {
      expect(
        await warningsOf(`proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "169.254.0.0/16"]
transforms:
  - name: allowlist
    config:
      domains: ["*"]
`),
      ).toEqual([]);
    });

    it('does not count a wide range that is not every address', async () => {
      expect(await warningsOf(`${LISTEN}transforms:\n  - name: allowlist\n    config:\n      cidrs: ["0.0.0.0/1"]\n      domains: ["*.example.com"]\n`)).toEqual([]);
    });
  });

  describe('a secret sent to every destination', () => {
    const withSecret = (rules: string): string => `${LISTEN}transforms:
  - name: allowlist
    config:
      domains: ["api.example.com"]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: SCOPED }
          inject: { header: X-Scoped }
          rules: [{ host: api.example.com }]
        - source:
            type: env
            var: SPRAYED
          inject: { header: Authorization }${rules}
`;

    it.each([
      ['no rules', '', '13 transforms[1].config.secrets[1].rules', 'has no rules, so it applies to every destination'],
      ['an empty rules list', '\n          rules: []', '17 transforms[1].config.secrets[1].rules', 'has no rules, so it applies to every destination'],
      ['a rule for host "*"', '\n          rules:\n            - host: "*"', '18 transforms[1].config.secrets[1].rules[0].host', 'has a rule for host "*", every destination'],
      ['a rule for ::/0', '\n          rules:\n            - host: api.example.com\n            - cidr: "::/0"', '19 transforms[1].config.secrets[1].rules[1].cidr', 'has a rule for ::/0, every IP-literal destination'],
    ])('%s: named by its source label', async (_label, rules, at, why) => {
      const warnings = await warningsOf(withSecret(rules));
      expect(where(warnings)).toEqual([at]);
      expect(warnings[0]?.message).toBe(
        `secret SPRAYED (env) ${why}: it will be sent to every destination the allowlist permits; add rules naming the hosts it is for`,
      );
    });
  });
});
