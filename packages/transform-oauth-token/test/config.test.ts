import { validateTransformConfig } from '@proxy/core/testing';
import { describe, expect, it } from 'vitest';
import { oauthTokenTransform } from '../src/index.js';
import { startTransform } from './harness.js';

const env = (name: string) => ({ type: 'env', var: name });
const base = {
  grant: 'client_credentials',
  client_id: env('ID'),
  client_secret: env('SECRET'),
  token_endpoint: 'https://login.example.com/oauth2/token',
  rules: [{ host: 'api.example.com' }],
};
const issuesOf = (entry: Record<string, unknown>) => validateTransformConfig(oauthTokenTransform, { tokens: [entry] });

describe('oauth_token config', () => {
  it('applies the defaults', async () => {
    const config = { tokens: [base] };
    expect(issuesOf(base)).toEqual([]);
    const { createSchemaValidator } = await import('@proxy/core');
    const copy = structuredClone(config);
    createSchemaValidator().compile(oauthTokenTransform.schema)(copy);
    expect(copy.tokens[0]).toMatchObject({ scopes: [], header: 'Authorization', value_prefix: 'Bearer ', require: false });
  });

  it('requires tokens, at least one entry, a grant, an endpoint and at least one rule', () => {
    expect(validateTransformConfig(oauthTokenTransform, {})).not.toEqual([]);
    expect(validateTransformConfig(oauthTokenTransform, { tokens: [] })).not.toEqual([]);
    for (const field of ['grant', 'token_endpoint', 'rules']) {
      const { [field]: _dropped, ...rest } = base as Record<string, unknown>;
      expect(issuesOf(rest).map((i) => `${i.path} ${i.message}`).join(' ')).toContain(field);
    }
    expect(issuesOf({ ...base, rules: [] })).not.toEqual([]);
  });

  it.each([
    ['client_credentials without client_secret', { client_secret: undefined }, 'client_secret'],
    ['refresh_token without refresh_token', { grant: 'refresh_token', client_secret: undefined }, 'refresh_token'],
    ['password without username', { grant: 'password', password: env('P') }, 'username'],
    ['jwt_bearer without audience', { grant: 'jwt_bearer', client_id: undefined, client_secret: undefined, issuer: env('I'), subject: env('S'), private_key: env('K') }, 'audience'],
  ])('%s is an error naming the field', (_name, change, field) => {
    const entry = Object.fromEntries(Object.entries({ ...base, ...change }).filter(([, v]) => v !== undefined));
    expect(issuesOf(entry).map((i) => `${i.path} ${i.message}`).join(' ')).toContain(field);
  });

  it('refuses a credential field the grant does not use, an unknown key, a bad grant, header or scope', () => {
    expect(issuesOf({ ...base, username: env('U') }).map((i) => i.path).join(' ')).toContain('username');
    expect(issuesOf({ ...base, client_secrett: env('X') })).not.toEqual([]);
    expect(issuesOf({ ...base, grant: 'implicit' })).not.toEqual([]);
    expect(issuesOf({ ...base, header: 'Bad Header' })).not.toEqual([]);
    expect(issuesOf({ ...base, scopes: ['has space'] })).not.toEqual([]);
    expect(issuesOf({ ...base, token_endpoint: 'ftp://login.example.com/token' })).not.toEqual([]);
    expect(issuesOf({ ...base, token_endpoint_headers: { 'bad header': env('K') } })).not.toEqual([]);
    expect(issuesOf({ ...base, client_id: { type: 'env' } })).not.toEqual([]);
  });

  it('checks the endpoint URL and the endpoint headers at create time, naming the field', async () => {
    const create = (entry: Record<string, unknown>) => startTransform({ tokens: [entry] }, { env: { ID: 'client-id', SECRET: 'client-secret' } });
    await expect(create({ ...base, token_endpoint: 'https://user:pw@login.example.com/token' })).rejects.toThrow(/tokens\[0\]\.token_endpoint: must not hold credentials/);
    await expect(create({ ...base, token_endpoint: 'https://login.example.com/token#x' })).rejects.toThrow(/fragment/);
    await expect(create({ ...base, token_endpoint_headers: { Authorization: env('K') } })).rejects.toThrow(/token_endpoint_headers\.Authorization: is set by the token request itself/);
    const valid = await create(base);
    await valid.close();
  });
});
