import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { SecretSourceConfig, SecretSourceDefinition } from '@proxy/core';

/** The `source` block of a `file` secret. */
export interface FileSourceConfig extends SecretSourceConfig {
  readonly type: 'file';
  /** The file holding the secret; a relative path resolves from the config file's directory. */
  readonly path: string;
}

/** Largest secret file read: far above any key or keyfile, and a guard against pointing at a device or a log. */
export const MAX_SECRET_FILE_BYTES = 1_048_576;

/**
 * `file`: the secret is the file's exact content (no trimming: a trailing newline is part of
 * it), read as UTF-8. An empty file, a file that is not valid UTF-8, anything but a regular
 * file, or one over {@link MAX_SECRET_FILE_BYTES} is a fetch failure (reported naming the path). With a `ttl` the
 * file is read again, so a rotated file (a Kubernetes secret volume, a Vault agent sink) is
 * picked up.
 */
export const fileSource: SecretSourceDefinition<FileSourceConfig> = {
  type: 'file',
  properties: { path: { type: 'string', minLength: 1 } },
  required: ['path'],
  label: (config) => config.path,
  create(config, context) {
    const file = resolve(context.baseDir, config.path);
    return { fetch: (signal) => readSecretFile(file, signal) };
  },
};

async function readSecretFile(file: string, signal: AbortSignal): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new Error(describe(err), { cause: err });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > MAX_SECRET_FILE_BYTES) throw new Error(`the file is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    const bytes = await handle.readFile({ signal });
    if (bytes.length === 0) throw new Error('the file is empty');
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      throw new Error('the file is not valid UTF-8');
    }
  } finally {
    await handle.close();
  }
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return code ?? (err instanceof Error ? err.message : String(err));
}
