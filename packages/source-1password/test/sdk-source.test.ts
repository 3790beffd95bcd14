import { createSecretResolver, SecretRedactor, type SecretSourceConfig, type SecretSourceDefinition } from '@proxy/core';
import { recordingLogger } from '@proxy/core/testing';
import { describe, expect, it } from 'vitest';
import { createOnePasswordSource, onePasswordSource, type OnePasswordSdkClient } from '../src/index.js';

/**
 * The `1password` source cannot reach 1Password's service here, so these tests give it a client
 * implementing the SDK's own `secrets.resolve` interface over an in-memory vault.
 */
function fakeSdk(items: Record<string, string>) {
  const signIns: string[] = [];
  const resolved: string[] = [];
  const state = { failSignIn: false, failResolve: undefined as Error | undefined };
  const factory = (token: string): Promise<OnePasswordSdkClient> => {
    signIns.push(token);
    if (state.failSignIn) return Promise.reject(new Error('invalid service account token'));
    return Promise.resolve({
      secrets: {
        resolve(ref: string) {
          resolved.push(ref);
          if (state.failResolve !== undefined) return Promise.reject(state.failResolve);
          const value = items[ref];
          return value === undefined ? Promise.reject(new Error(`error resolving secret reference: no item matched "${ref}"`)) : Promise.resolve(value);
        },
      },
    });
  };
  return { factory, signIns, resolved, state, items };
}

async function fetchWith(definition: SecretSourceDefinition, source: Omit<SecretSourceConfig, 'type'>, env: Record<string, string>, redactor?: SecretRedactor) {
  const handle = await createSecretResolver({
    sources: [definition],
    logger: recordingLogger([]),
    clock: { now: () => Date.now() },
    http: () => Promise.reject(new Error('offline')),
    signal: new AbortController().signal,
    env,
    ...(redactor === undefined ? {} : { redactor }),
  }).open({ type: '1password', ...source });
  await handle.ready();
  handle.close();
  try {
    return handle.value();
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

const env = { OP_SERVICE_ACCOUNT_TOKEN: 'ops_service-account-token-1' };

describe('1password (SDK) source', () => {
  it('is the SDK-backed definition, labelled by secret_ref', () => {
    expect(onePasswordSource.type).toBe('1password');
    expect(onePasswordSource.label({ type: '1password', secret_ref: 'op://Engineering/OpenAI/credential' })).toBe('op://Engineering/OpenAI/credential');
    expect(Object.keys(onePasswordSource.properties)).toEqual(['secret_ref', 'token_env']);
  });

  it('loads the real SDK by default, which refuses a malformed token before any network call', async () => {
    const error = await fetchWith(onePasswordSource, { secret_ref: 'op://v/i/f' }, { OP_SERVICE_ACCOUNT_TOKEN: 'ops_not-a-real-token' });
    expect(error).toMatch(/^error: secret op:\/\/v\/i\/f \(1password\) could not be fetched: invalid service account token/);
    expect(error).not.toContain('ops_not-a-real-token');
  });

  it('resolves the reference with a client signed in with the service account token', async () => {
    const sdk = fakeSdk({ 'op://Engineering/OpenAI/credential': 'sk-from-sdk-1' });
    const definition = createOnePasswordSource(sdk.factory);
    expect(await fetchWith(definition, { secret_ref: 'op://Engineering/OpenAI/credential' }, env)).toBe('sk-from-sdk-1');
    expect(sdk.signIns).toEqual([env.OP_SERVICE_ACCOUNT_TOKEN]);
    expect(sdk.resolved).toEqual(['op://Engineering/OpenAI/credential']);
  });

  it('shares one client per token across secrets, and reads the token from token_env', async () => {
    const sdk = fakeSdk({ 'op://v/a/f': 'value-a-1234', 'op://v/b/f': 'value-b-1234' });
    const definition = createOnePasswordSource(sdk.factory);
    expect(await fetchWith(definition, { secret_ref: 'op://v/a/f' }, env)).toBe('value-a-1234');
    expect(await fetchWith(definition, { secret_ref: 'op://v/b/f' }, env)).toBe('value-b-1234');
    expect(await fetchWith(definition, { secret_ref: 'op://v/b/f', token_env: 'OTHER_TOKEN' }, { OTHER_TOKEN: 'ops_other-token-2' })).toBe('value-b-1234');
    expect(sdk.signIns).toEqual([env.OP_SERVICE_ACCOUNT_TOKEN, 'ops_other-token-2']);
  });

  it('applies json_key', async () => {
    const sdk = fakeSdk({ 'op://v/i/json': '{"key":"from-json-sdk"}' });
    expect(await fetchWith(createOnePasswordSource(sdk.factory), { secret_ref: 'op://v/i/json', json_key: 'key' }, env)).toBe('from-json-sdk');
  });

  it('is unavailable without a token, naming the variable', async () => {
    const sdk = fakeSdk({});
    expect(await fetchWith(createOnePasswordSource(sdk.factory), { secret_ref: 'op://v/i/f' }, {})).toBe(
      'error: secret op://v/i/f (1password) could not be fetched: OP_SERVICE_ACCOUNT_TOKEN is not set',
    );
    expect(sdk.signIns).toEqual([]);
  });

  it('passes on a sign-in failure and signs in again at the next fetch', async () => {
    const sdk = fakeSdk({ 'op://v/i/f': 'after-retry-value' });
    const definition = createOnePasswordSource(sdk.factory);
    sdk.state.failSignIn = true;
    expect(await fetchWith(definition, { secret_ref: 'op://v/i/f' }, env)).toContain('could not be fetched: invalid service account token');
    sdk.state.failSignIn = false;
    expect(await fetchWith(definition, { secret_ref: 'op://v/i/f' }, env)).toBe('after-retry-value');
    expect(sdk.signIns).toHaveLength(2);
  });

  it('passes on a resolve failure, and refuses an empty field', async () => {
    const sdk = fakeSdk({ 'op://v/i/empty': '' });
    const definition = createOnePasswordSource(sdk.factory);
    expect(await fetchWith(definition, { secret_ref: 'op://v/i/missing' }, env)).toContain('no item matched "op://v/i/missing"');
    expect(await fetchWith(definition, { secret_ref: 'op://v/i/empty' }, env)).toContain('the field is empty');
  });

  it('registers the service account token with the redactor', async () => {
    const redactor = new SecretRedactor();
    const sdk = fakeSdk({ 'op://v/i/f': 'registered-value-1' });
    await fetchWith(createOnePasswordSource(sdk.factory), { secret_ref: 'op://v/i/f' }, env, redactor);
    expect(redactor.redact(`${env.OP_SERVICE_ACCOUNT_TOKEN} registered-value-1`)).toBe('[redacted:OP_SERVICE_ACCOUNT_TOKEN] [redacted:op://v/i/f]');
  });
});
