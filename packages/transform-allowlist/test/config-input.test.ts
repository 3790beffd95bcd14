// The allowlist's config as written: every field has a schema default, so a config naming only
// `domains` type-checks wherever a config is accepted (`pnpm typecheck` runs tsc over test/).
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ConfigInput } from '@proxy/core';
import { proxyPlugin, use, type transformPlugin } from '@proxy/core/fastify';
import { runTransform } from '@proxy/core/testing';
import { allowlistTransform, type AllowlistConfig, type AllowlistInput } from '../src/index.js';

/** What `app.register(transformPlugin(allowlistTransform), options)` accepts as options. */
type PluginOptions = Parameters<ReturnType<typeof transformPlugin<AllowlistConfig, AllowlistInput>>>[1];

describe('allowlist config input', () => {
  it('leaves every defaulted field optional', () => {
    expectTypeOf<ConfigInput<typeof allowlistTransform>>().toEqualTypeOf<AllowlistInput>();
    expectTypeOf<{ domains: string[] }>().toExtend<AllowlistInput>();
    expectTypeOf<{ rules: { host: string; paths: string[] }[]; warn: true }>().toExtend<AllowlistInput>();
    expectTypeOf<Record<never, never>>().toExtend<AllowlistInput>();
    expectTypeOf<{ domains: string[] }>().toExtend<PluginOptions>();
    expectTypeOf<{ domains: number[] }>().not.toExtend<PluginOptions>();
    expectTypeOf<{ warn: 'yes' }>().not.toExtend<AllowlistInput>();
    // create() still receives the whole config, defaults applied.
    expectTypeOf<Parameters<typeof allowlistTransform.create>[0]>().toEqualTypeOf<AllowlistConfig>();
  });

  it('runs a config naming only domains: the validator applies the defaults', async () => {
    const plugin = proxyPlugin({ transforms: [use(allowlistTransform, { domains: ['api.example.com'] })] });
    expect(typeof plugin).toBe('function');
    const config: AllowlistInput = { domains: ['api.example.com'] };
    const allowed = await runTransform(allowlistTransform, config, { host: 'api.example.com', scheme: 'https', port: 443 });
    expect(allowed.decision.action).toBe('continue');
    // default_ports [80, 443]: another port is refused.
    const refused = await runTransform(allowlistTransform, config, { host: 'api.example.com', scheme: 'https', port: 8443 });
    expect(refused.decision).toMatchObject({ action: 'reject', status: 403, reason: 'not_allowlisted' });
  });
});
