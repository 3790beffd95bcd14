import { createSecretResolver, SecretRedactor, type SecretHandle, type SecretSourceConfig } from '@proxy/core';
import { recordingLogger } from '@proxy/core/testing';
import { startFakeOnePasswordConnect, type FakeOnePasswordConnect } from '@proxy/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onePasswordConnectSource, onePasswordSources, parseSecretReference } from '../src/index.js';

const TOKEN = 'connect-token-for-source-tests';

let connect: FakeOnePasswordConnect;
let env: Record<string, string>;
let vaultId: string;
let itemId: string;

beforeAll(async () => {
  connect = await startFakeOnePasswordConnect({ token: TOKEN });
  vaultId = connect.putVault('Engineering');
  connect.putVault('Twins', 'a'.repeat(26));
  connect.putVault('Twins', 'b'.repeat(26));
  itemId = connect.putItem('Engineering', {
    title: 'OpenAI',
    sections: [
      { id: 'prodsection', label: 'Production' },
      { id: 'stagesection', label: 'Staging' },
    ],
    fields: [
      { id: 'credential', label: 'credential', value: 'sk-connect-plain' },
      { id: 'prodkey', label: 'api key', value: 'sk-connect-prod', section: 'prodsection' },
      { id: 'stagekey', label: 'api key', value: 'sk-connect-stage', section: 'stagesection' },
      { id: 'jsonfield', label: 'config', value: '{"token":"sk-connect-json"}' },
      { id: 'dupa', label: 'dup', value: 'one-value' },
      { id: 'dupb', label: 'dup', value: 'two-value' },
      { id: 'emptyfield', label: 'empty' },
    ],
  });
  env = { OP_CONNECT_HOST: connect.url, OP_CONNECT_TOKEN: TOKEN };
});

afterAll(async () => {
  await connect?.close();
});

async function fetchSecret(source: Omit<SecretSourceConfig, 'type'>, options: { env?: Record<string, string>; redactor?: SecretRedactor } = {}): Promise<SecretHandle> {
  const handle = await createSecretResolver({
    sources: onePasswordSources,
    logger: recordingLogger([]),
    clock: { now: () => Date.now() },
    http: () => Promise.reject(new Error('sources use their own clients')),
    signal: new AbortController().signal,
    env: options.env ?? env,
    ...(options.redactor === undefined ? {} : { redactor: options.redactor }),
  }).open({ type: '1password_connect', ...source });
  await handle.ready();
  handle.close();
  return handle;
}

function valueOrError(handle: SecretHandle): string {
  try {
    return handle.value();
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

describe('parseSecretReference', () => {
  it('splits three and four part references', () => {
    expect(parseSecretReference('op://Engineering/OpenAI/credential')).toEqual({ vault: 'Engineering', item: 'OpenAI', field: 'credential' });
    expect(parseSecretReference('op://v/i/s/f')).toEqual({ vault: 'v', item: 'i', section: 's', field: 'f' });
  });

  it.each(['op://v/i', 'op://v/i/s/f/x', 'op://v//f', 'https://v/i/f', 'op://v/i/f?attribute=otp'])('refuses %s', (ref) => {
    expect(() => parseSecretReference(ref)).toThrow(/op:\/\/vault\/item\/\[section\/\]field/);
  });
});

describe('1password_connect', () => {
  it('labels by secret_ref', () => {
    expect(onePasswordConnectSource.label({ type: '1password_connect', secret_ref: 'op://a/b/c' })).toBe('op://a/b/c');
  });

  it.each([
    ['by names', 'op://Engineering/OpenAI/credential', 'sk-connect-plain'],
    ['vault and item by id', () => `op://${vaultId}/${itemId}/credential`, 'sk-connect-plain'],
    ['field by id', 'op://Engineering/OpenAI/prodkey', 'sk-connect-prod'],
    ['section by label', 'op://Engineering/OpenAI/Production/api key', 'sk-connect-prod'],
    ['section by id', 'op://Engineering/OpenAI/stagesection/api key', 'sk-connect-stage'],
  ])('reads a field %s', async (_, ref, expected) => {
    const handle = await fetchSecret({ secret_ref: typeof ref === 'function' ? ref() : ref });
    expect(valueOrError(handle)).toBe(expected);
  });

  it('applies json_key to the field value', async () => {
    expect(valueOrError(await fetchSecret({ secret_ref: 'op://Engineering/OpenAI/config', json_key: 'token' }))).toBe('sk-connect-json');
  });

  it('finds the vault by name filter and the item by title filter, with the bearer token', async () => {
    const before = connect.calls.length;
    await fetchSecret({ secret_ref: 'op://Engineering/OpenAI/credential' });
    expect(connect.calls.slice(before)).toEqual([
      { method: 'GET', path: '/v1/vaults', filter: 'name eq "Engineering"', authorized: true },
      { method: 'GET', path: `/v1/vaults/${vaultId}/items`, filter: 'title eq "OpenAI"', authorized: true },
      { method: 'GET', path: `/v1/vaults/${vaultId}/items/${itemId}`, authorized: true },
    ]);
  });

  it.each([
    ['op://Nowhere/OpenAI/credential', 'no vault "Nowhere"'],
    ['op://Engineering/Missing/credential', 'no item "Missing" in vault "Engineering"'],
    ['op://Engineering/OpenAI/nofield', 'no field "nofield" in item "OpenAI"'],
    ['op://Engineering/OpenAI/Nosection/api key', 'no section "Nosection" in item "OpenAI"'],
    ['op://Engineering/OpenAI/api key', '2 entries match field "api key"'],
    ['op://Engineering/OpenAI/dup', '2 entries match field "dup"'],
    ['op://Engineering/OpenAI/empty', 'field "empty" in item "OpenAI" has no value'],
  ])('explains why %s cannot be read', async (ref, message) => {
    const handle = await fetchSecret({ secret_ref: ref });
    expect(handle.available).toBe(false);
    expect(valueOrError(handle)).toContain(`error: secret ${ref} (1password_connect) could not be fetched: ${message}`);
  });

  it('refuses a name that several vaults share, and takes either by id', async () => {
    expect(valueOrError(await fetchSecret({ secret_ref: 'op://Twins/x/y' }))).toContain('2 matches for vault "Twins"; name it by id');
    expect(valueOrError(await fetchSecret({ secret_ref: `op://${'b'.repeat(26)}/x/y` }))).toContain(`no item "x" in vault "${'b'.repeat(26)}"`);
  });

  it('reports a refused token without showing it, and registers the token with the redactor', async () => {
    const redactor = new SecretRedactor();
    const handle = await fetchSecret({ secret_ref: 'op://Engineering/OpenAI/credential' }, { env: { ...env, OP_CONNECT_TOKEN: 'wrong-token-value' }, redactor });
    expect(valueOrError(handle)).toContain('the Connect server refused the token (401)');
    expect(valueOrError(handle)).not.toContain('wrong-token-value');
    expect(redactor.redact('wrong-token-value')).toBe('[redacted:OP_CONNECT_TOKEN]');
  });

  it('reads host and token from the variables host_env and token_env name', async () => {
    const handle = await fetchSecret(
      { secret_ref: 'op://Engineering/OpenAI/credential', host_env: 'MY_CONNECT', token_env: 'MY_CONNECT_TOKEN' },
      { env: { MY_CONNECT: `${connect.url}/`, MY_CONNECT_TOKEN: TOKEN } },
    );
    expect(valueOrError(handle)).toBe('sk-connect-plain');
  });

  it.each([
    [{}, 'OP_CONNECT_HOST is not set'],
    [{ OP_CONNECT_HOST: 'http://127.0.0.1:1' }, 'OP_CONNECT_TOKEN is not set'],
    [{ OP_CONNECT_HOST: 'localhost:8080', OP_CONNECT_TOKEN: 't' }, 'OP_CONNECT_HOST must be an http or https URL'],
    [{ OP_CONNECT_HOST: 'not a url', OP_CONNECT_TOKEN: 't' }, 'OP_CONNECT_HOST is not a URL'],
    [{ OP_CONNECT_HOST: 'http://127.0.0.1:1', OP_CONNECT_TOKEN: 't' }, 'fetch failed'],
  ])('is unavailable with %j: %s', async (badEnv, message) => {
    expect(valueOrError(await fetchSecret({ secret_ref: 'op://a/b/c' }, { env: badEnv }))).toContain(message);
  });

  it('passes on a server failure by status', async () => {
    connect.failWith(503);
    try {
      expect(valueOrError(await fetchSecret({ secret_ref: 'op://Engineering/OpenAI/credential' }))).toContain('the Connect server answered 503');
    } finally {
      connect.failWith(undefined);
    }
  });

  it('picks up a rotated field on the next fetch', async () => {
    connect.putItem('Engineering', { title: 'Rotating', fields: [{ label: 'password', value: 'rotation-one' }] });
    const fetcher = onePasswordConnectSource.create(
      { type: '1password_connect', secret_ref: 'op://Engineering/Rotating/password' },
      { logger: recordingLogger([]), http: () => Promise.reject(new Error('x')), env, baseDir: '/', redactor: new SecretRedactor() },
    );
    const signal = new AbortController().signal;
    expect(await fetcher.fetch(signal)).toBe('rotation-one');
    connect.setField('Engineering', 'Rotating', 'password', 'rotation-two');
    expect(await fetcher.fetch(signal)).toBe('rotation-two');
  });
});
