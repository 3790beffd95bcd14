import { readFileSync } from 'node:fs';
import { createSchemaValidator, createSecretResolver, isSecretSourceDefinition, secretSourceRef, type SecretHandle } from '@proxy/core';
import { recordingLogger } from '@proxy/core/testing';
import { describe, expect, it } from 'vitest';
import commandSourceDefault, { commandSource } from './index.js';

const packageName = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string }).name;

async function fetchSecret(source: Record<string, unknown>, env: Record<string, string> = { PATH: process.env.PATH ?? '' }): Promise<SecretHandle> {
  const handle = await createSecretResolver({
    sources: [commandSource],
    logger: recordingLogger([]),
    clock: { now: () => Date.now() },
    http: () => Promise.reject(new Error('offline')),
    signal: new AbortController().signal,
    env,
  }).open({ type: packageName, ...source });
  await handle.ready();
  handle.close();
  return handle;
}

const errorOf = (handle: SecretHandle): string => {
  try {
    handle.value();
    return '';
  } catch (err) {
    return (err as Error).message;
  }
};

describe('package exports', () => {
  it('exports one valid definition, as default and by name, whose type is the package name', () => {
    expect(commandSourceDefault).toBe(commandSource);
    expect(isSecretSourceDefinition(commandSource)).toBe(true);
    expect(commandSource.type).toBe(packageName);
  });
});

describe('the command source', () => {
  it('uses what the command prints, without the trailing newline, labelled by the command', async () => {
    const handle = await fetchSecret({ command: ['printf', 'cmd-secret-value\\n'] });
    expect(handle.label).toBe('printf cmd-secret-value\\n');
    expect(handle.value()).toBe('cmd-secret-value');
  });

  it('keeps the newline with trim_newline: false, and works with json_key', async () => {
    expect((await fetchSecret({ command: ['printf', 'v\\n'], trim_newline: false })).value()).toBe('v\n');
    expect((await fetchSecret({ command: ['printf', '{"k":"from-json-cmd"}'], json_key: 'k' })).value()).toBe('from-json-cmd');
  });

  it('runs in the environment the proxy gives its sources', async () => {
    const handle = await fetchSecret({ command: ['sh', '-c', 'printf %s "$TOKEN_FOR_CMD"'] }, { PATH: process.env.PATH ?? '', TOKEN_FOR_CMD: 'env-cmd-value' });
    expect(handle.value()).toBe('env-cmd-value');
  });

  it.each([
    [['sh', '-c', 'printf leaked-%s output-value; exit 3'], 'sh exited with status 3'],
    [['no-such-command-here'], 'no-such-command-here: command not found'],
    [['printf', ''], 'printf printed nothing'],
  ])('fails %j saying how, never what it printed', async (command, message) => {
    const error = errorOf(await fetchSecret({ command }));
    expect(error).toContain(message);
    expect(error).not.toContain('leaked-output-value');
  });

  it('is killed when the secret is closed mid-fetch', async () => {
    const handle = await createSecretResolver({
      sources: [commandSource],
      logger: recordingLogger([]),
      clock: { now: () => Date.now() },
      http: () => Promise.reject(new Error('offline')),
      signal: new AbortController().signal,
      env: { PATH: process.env.PATH ?? '' },
    }).open({ type: packageName, command: ['sleep', '30'] });
    const started = Date.now();
    handle.close();
    await handle.ready();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(handle.available).toBe(false);
  });

  it('declares its fields for the config check', () => {
    const validate = createSchemaValidator({ secretSources: [commandSource] }).compile(secretSourceRef);
    expect(validate({ type: packageName, command: ['pass', 'show', 'openai'], ttl: '10m' })).toBe(true);
    expect(validate({ type: packageName, command: [] })).toBe(false);
    expect(validate({ type: packageName, command: ['x'], shell: true })).toBe(false);
  });
});
