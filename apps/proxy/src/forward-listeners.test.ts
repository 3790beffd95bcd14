import { describe, expect, it } from 'vitest';
import { ConfigError } from '@proxy/core';
import { forwardListeners, type ForwardListeners } from './forward-listeners.js';
import { loadProxyConfig } from './config-loader.js';

/** The listeners a config written as YAML opens (nothing is bound). */
async function listenersOf(yaml: string): Promise<ForwardListeners> {
  const { config, document } = await loadProxyConfig({ text: yaml, name: 'proxy.yaml' });
  return forwardListeners(config, document);
}

/** A config as written for iron-proxy: no listener named, DNS on, interception with a CA. */
const IRON_PROXY_FILE = `dns:
  proxy_ip: "172.20.0.2"
tls:
  ca_cert: /certs/ca.crt
  ca_key: /certs/ca.key
transforms:
  - name: allowlist
    config:
      domains: ["httpbin.org"]
`;

const COMPAT = 'compat:\n  iron_proxy_defaults: true\n';

describe('forwardListeners', () => {
  it("opens iron-proxy's defaults with compat.iron_proxy_defaults: :80, :443, DNS on :53 and /healthz on :9090", async () => {
    const listeners = await listenersOf(IRON_PROXY_FILE + COMPAT);
    expect(listeners).toEqual({ http: true, https: true, tunnel: false, dns: true, metrics: { listen: ':9090', path: '/metrics' } });
  });

  it('opens the same file without the switch, except the metrics listener (no metrics section, no /healthz)', async () => {
    const listeners = await listenersOf(IRON_PROXY_FILE);
    // https: the tls section opens it, as before.
    expect(listeners).toEqual({ http: true, https: true, tunnel: false, dns: true, metrics: undefined });
  });

  it('opens :443 with the switch even without a tls section (sni-only needs no CA)', async () => {
    expect((await listenersOf(`tls:\n  mode: sni-only\n${COMPAT}`)).https).toBe(true);
    expect((await listenersOf('proxy:\n  http_listen: "127.0.0.1:0"\n')).https).toBe(false);
  });

  it('refuses the switch in mitm mode without a CA, at the switch, as iron-proxy refuses :443 without one', async () => {
    const err = await loadProxyConfig({ text: `dns:\n  enabled: false\n${COMPAT}`, name: 'proxy.yaml' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => `${i.line} ${i.path}: ${i.message}`)).toEqual([
      '4 tls.ca_cert: required in mitm mode when proxy.https_listen is set (opened by compat.iron_proxy_defaults) (or set tls.mode: sni-only)',
      '4 tls.ca_key: required in mitm mode when proxy.https_listen is set (opened by compat.iron_proxy_defaults) (or set tls.mode: sni-only)',
    ]);
  });

  it('keeps a written metrics section (its own listen and path) with or without the switch', async () => {
    const metrics = 'metrics:\n  listen: "127.0.0.1:0"\n  path: /prom\n';
    expect((await listenersOf(IRON_PROXY_FILE + metrics + COMPAT)).metrics).toEqual({ listen: '127.0.0.1:0', path: '/prom' });
    expect((await listenersOf(IRON_PROXY_FILE + metrics)).metrics).toEqual({ listen: '127.0.0.1:0', path: '/prom' });
  });

  it('runs no DNS server when the dns section disables it, switch or not', async () => {
    const file = `dns:\n  enabled: false\n  proxy_ip: "172.20.0.2"\ntls:\n  mode: sni-only\n`;
    expect((await listenersOf(file + COMPAT)).dns).toBe(false);
    expect((await listenersOf(file)).dns).toBe(false);
  });

  it('opens the forward HTTP listener next to reverse listeners only with the switch (or when written)', async () => {
    const sidecar = `proxy:\n  reverse:\n    - listen: "127.0.0.1:0"\n      upstream_host: "api.example.com"\ntls:\n  mode: sni-only\n`;
    expect((await listenersOf(sidecar)).http).toBe(false);
    expect((await listenersOf(sidecar + COMPAT)).http).toBe(true);
  });

  it('opens the tunnel listener only when written', async () => {
    expect((await listenersOf(`proxy:\n  tunnel_listen: "127.0.0.1:0"\ntls:\n  mode: sni-only\n${COMPAT}`)).tunnel).toBe(true);
    expect((await listenersOf(`tls:\n  mode: sni-only\n${COMPAT}`)).tunnel).toBe(false);
  });
});
