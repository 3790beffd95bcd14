import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecretResolver, ErrorCodes, ProxyError, SecretRedactor, type SecretSourceConfig } from '@proxy/core';
import { recordingLogger } from '@proxy/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fileSourceDefault, { fileSource, MAX_SECRET_FILE_BYTES } from '../src/index.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'source-file-'));
  await mkdir(join(dir, 'secrets'));
  await writeFile(join(dir, 'secrets', 'token'), 'file-secret-value\n');
  await writeFile(join(dir, 'secrets', 'json'), '{"client_secret":"from-json-file"}');
  await writeFile(join(dir, 'secrets', 'empty'), '');
  await writeFile(join(dir, 'secrets', 'binary'), Buffer.from([0xff, 0xfe, 0x00, 0xc3]));
  await writeFile(join(dir, 'secrets', 'bom'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('after-bom')]));
  await writeFile(join(dir, 'secrets', 'huge'), Buffer.alloc(MAX_SECRET_FILE_BYTES + 1, 0x61));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function resolver(env: Record<string, string> = {}) {
  return createSecretResolver({
    sources: [fileSource],
    logger: recordingLogger([]),
    clock: { now: () => Date.now() },
    http: () => Promise.reject(new Error('offline')),
    signal: new AbortController().signal,
    env,
    baseDir: dir,
  });
}

async function read(source: Omit<SecretSourceConfig, 'type'>): Promise<{ value?: string; error?: ProxyError }> {
  const handle = await resolver().open({ type: 'file', ...source });
  await handle.ready();
  try {
    return { value: handle.value() };
  } catch (err) {
    return { error: err as ProxyError };
  } finally {
    handle.close();
  }
}

describe('file source', () => {
  it('is the default export and labels a secret by its path', () => {
    expect(fileSourceDefault).toBe(fileSource);
    expect(fileSource.type).toBe('file');
    expect(fileSource.label({ type: 'file', path: '/run/secrets/api' })).toBe('/run/secrets/api');
  });

  it('reads the exact bytes, trailing newline included, relative to the config directory', async () => {
    expect(await read({ path: 'secrets/token' })).toEqual({ value: 'file-secret-value\n' });
    expect(await read({ path: join(dir, 'secrets', 'token') })).toEqual({ value: 'file-secret-value\n' });
    // A byte-order mark is content too.
    expect((await read({ path: 'secrets/bom' })).value).toBe('\ufeffafter-bom');
  });

  it('works with json_key', async () => {
    expect(await read({ path: 'secrets/json', json_key: 'client_secret' })).toEqual({ value: 'from-json-file' });
  });

  it.each([
    ['secrets/empty', /secret secrets\/empty \(file\) could not be fetched: the file is empty/],
    ['secrets/missing', /secret secrets\/missing \(file\) could not be fetched: no such file/],
    ['secrets', /secret secrets \(file\) could not be fetched: not a regular file/],
    ['secrets/binary', /secrets\/binary \(file\) could not be fetched: the file is not valid UTF-8/],
    ['secrets/huge', /secrets\/huge \(file\) could not be fetched: the file is larger than 1048576 bytes/],
  ])('refuses %s with SECRET_UNAVAILABLE naming the path', async (path, message) => {
    const { error } = await read({ path });
    expect(error).toBeInstanceOf(ProxyError);
    expect(error!.code).toBe(ErrorCodes.SECRET_UNAVAILABLE);
    expect(error!.message).toMatch(message);
  });

  it('reads the file again on every refresh, so a rotated file is picked up', async () => {
    const path = join(dir, 'rotating');
    await writeFile(path, 'before-rotation');
    const fetcher = fileSource.create({ type: 'file', path }, { logger: recordingLogger([]), http: () => Promise.reject(new Error('offline')), env: {}, baseDir: dir, redactor: new SecretRedactor() });
    const signal = new AbortController().signal;
    expect(await fetcher.fetch(signal)).toBe('before-rotation');
    await writeFile(path, 'after-rotation');
    expect(await fetcher.fetch(signal)).toBe('after-rotation');
  });
});
