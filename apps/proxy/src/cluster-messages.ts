/**
 * The IPC messages between the primary of a proxy cluster (`proxy.workers` > 1) and its
 * workers, besides the log batches of `worker-log-channel.ts`. The primary asks a worker a
 * {@link WorkerQuery} and the worker answers it; a worker announces it serves with
 * {@link ReadyMessage}. Errors cross the channel as {@link SerializedError} and are rebuilt, so
 * a failed reload reaches the management API as the same `ConfigError` a single process throws.
 */
import { ConfigError, ProxyError } from '@proxy/core';
import type { ConfigIssue, ErrorCode } from '@proxy/core';
import type { ReloadTrigger } from './reloader.js';

/** What the primary can ask a worker. */
export type WorkerQuery = 'metrics' | 'secrets' | 'reload' | 'status';

/** Primary -> worker: answer `query`, quoting `id`. */
export interface QueryMessage {
  readonly type: 'proxy:query';
  readonly id: number;
  readonly query: WorkerQuery;
  /** What asked for a `reload` (the worker's reload log line names it). */
  readonly trigger?: ReloadTrigger;
}

/** Worker -> primary: the answer to query `id`. */
export type AnswerMessage =
  | { readonly type: 'proxy:answer'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'proxy:answer'; readonly id: number; readonly ok: false; readonly error: SerializedError };

/** Worker -> primary: the worker's listeners are open and it answers queries. */
export interface ReadyMessage {
  readonly type: 'proxy:ready';
}

/** An error as it crosses the IPC channel. */
export type SerializedError =
  | { readonly kind: 'config'; readonly code: ErrorCode; readonly issues: readonly ConfigIssue[] }
  | { readonly kind: 'proxy'; readonly code: ErrorCode; readonly message: string }
  | { readonly kind: 'other'; readonly name: string; readonly message: string };

/** The message's `type` when it is one of ours, else undefined. */
export function messageType(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const type = (message as { type?: unknown }).type;
  return typeof type === 'string' && type.startsWith('proxy:') ? type : undefined;
}

/** Turns an error into what crosses the channel. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof ConfigError) return { kind: 'config', code: err.code, issues: err.issues };
  if (err instanceof ProxyError) return { kind: 'proxy', code: err.code, message: err.message };
  return { kind: 'other', name: err instanceof Error ? err.name : typeof err, message: err instanceof Error ? err.message : String(err) };
}

/** Rebuilds an error sent with {@link serializeError}. */
export function deserializeError(error: SerializedError): Error {
  if (error.kind === 'config') return new ConfigError([...error.issues], error.code);
  if (error.kind === 'proxy') return new ProxyError(error.code, error.message);
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  return rebuilt;
}

/** The environment variable through which the primary gives its workers its own listeners' addresses (JSON). */
export const OWN_ADDRESSES_ENV = 'PROXY_CLUSTER_OWN_ADDRESSES';
