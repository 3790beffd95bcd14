// The transform and harness calls shown in README.md, kept working.
import { describe, expect, it } from 'vitest';
import { compileRules, defineTransform, reject, rulesSchema, secretSourceRef, type RuleConfig, type SecretSourceConfig, type WithDefaults } from '../src/index.js';
import { runTransform, validateTransformConfig } from '../src/testing.js';

interface TeamTokenConfig {
  header: string;
  source: SecretSourceConfig;
  rules: RuleConfig[];
}

const teamToken = defineTransform<TeamTokenConfig, WithDefaults<TeamTokenConfig, 'header'>>({
  name: '@acme/transform-team-token',
  schema: {
    type: 'object',
    properties: { header: { type: 'string', default: 'X-Team-Token' }, source: secretSourceRef, rules: rulesSchema },
    required: ['source', 'rules'],
    additionalProperties: false,
  },
  async create(config, env) {
    const rules = compileRules(config.rules);
    const token = await env.secrets.open(config.source);
    return {
      onRequest(request, trace) {
        if (!rules.matches(request)) return reject(403, 'team_not_allowed');
        request.headers.set(config.header, token.value());
        trace.annotate('secret', token.label);
        return undefined;
      },
      close: () => token.close(),
    };
  },
});

describe('README example', () => {
  const config = { source: { type: 'env', var: 'TEAM_TOKEN' }, rules: [{ host: '*.example.com' }] };

  it('injects the token on matching hosts without leaking it', async () => {
    const result = await runTransform(teamToken, config, { host: 'api.example.com' }, { env: { TEAM_TOKEN: 't-123' } });
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.get('x-team-token')).toBe('t-123');
    expect(JSON.stringify([result.audit, result.logs])).not.toContain('t-123');
  });

  it('rejects other hosts', async () => {
    const result = await runTransform(teamToken, config, { host: 'example.org' }, { env: { TEAM_TOKEN: 't-123' } });
    expect(result.decision).toEqual({ action: 'reject', status: 403, reason: 'team_not_allowed' });
  });

  it('reports a missing source', () => {
    expect(validateTransformConfig(teamToken, { rules: [] })).toEqual([{ path: 'source', message: 'is required' }]);
  });
});
