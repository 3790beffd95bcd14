import { dirname } from 'node:path';
import { createSecretResolver, systemClock } from '@proxy/core';
import type { ConfigIssue, Logger, SecretSourceConfig } from '@proxy/core';
import { findSecretSources, issueAt } from '@proxy/config';
import type { LoadedProxyConfig } from './config-loader.js';

/** What fetching one configured secret source gave. */
export interface SecretCheck {
  /** Where the source block is written. */
  readonly at: ConfigIssue;
  /** The secret's label (env var, secret id): never its value. */
  readonly label: string;
  readonly type: string;
  readonly available: boolean;
  /** Why it is unavailable (the source's error message, which never holds a value). */
  readonly error?: string;
}

/**
 * `proxy validate --check-secrets`: fetches every secret source the config names, once and all
 * at the same time, the way startup does, and reports each by label and location once every
 * fetch has settled. Sources are found wherever a transform's schema
 * declares one.
 */
export async function checkSecrets(loaded: LoadedProxyConfig, env: Readonly<Record<string, string | undefined>> = process.env): Promise<SecretCheck[]> {
  const { document, config, registry } = loaded;
  const found = findSecretSources({ transforms: config.transforms }, registry.transforms);
  const shutdown = new AbortController();
  const resolver = createSecretResolver({
    sources: registry.secretSources,
    logger: silentLogger,
    clock: systemClock,
    http: () => Promise.reject(new Error('secret sources fetch with their own clients')),
    signal: shutdown.signal,
    env,
    baseDir: dirname(document.file),
  });
  try {
    // Every source is fetched at once; each fetch is bounded by the resolver's timeout.
    const handles = await Promise.all(found.map(({ source }) => resolver.open(source as SecretSourceConfig)));
    await Promise.all(handles.map((h) => h.ready()));
    return found.map(({ path }, i) => {
      const handle = handles[i]!;
      let error: string | undefined;
      try {
        handle.value();
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      handle.close();
      return { at: issueAt(document, path, ''), label: handle.label, type: handle.type, available: handle.available, ...(error === undefined ? {} : { error }) };
    });
  } finally {
    shutdown.abort();
  }
}

/** One line per check: `file:line:column path: label (type): available|unavailable: why`. */
export function formatSecretCheck(check: SecretCheck): string {
  const where = `${check.at.file ?? ''}:${check.at.line ?? 0}:${check.at.column ?? 0}`;
  const state = check.available ? 'available' : `unavailable: ${check.error ?? 'no value'}`;
  return `${where} ${check.at.path}: secret ${check.label} (${check.type}): ${state}`;
}

const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
