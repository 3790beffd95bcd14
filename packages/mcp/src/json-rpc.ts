/** A JSON-RPC 2.0 id: a string, a number, or null. */
export type JsonRpcId = string | number | null;

/** One JSON-RPC 2.0 message as the policy sees it. */
export interface JsonRpcMessage {
  /** `request` (has an id), `notification` (no id), or `response` (a result or an error). */
  readonly kind: 'request' | 'notification' | 'response';
  /** Present on requests and responses. */
  readonly id?: JsonRpcId;
  /** Present on requests and notifications. */
  readonly method?: string;
  readonly params?: unknown;
  /** The decoded message. */
  readonly raw: Record<string, unknown>;
}

/** A body that parsed as JSON-RPC: one message, or a batch (an array, never empty). */
export interface JsonRpcBody {
  readonly batch: boolean;
  readonly messages: readonly JsonRpcMessage[];
}

/**
 * Parses a request or response body as JSON-RPC 2.0. Undefined when it is not: not JSON, an
 * empty batch, or an entry without `"jsonrpc": "2.0"`, without a string `method` (requests) or
 * without `result`/`error` (responses), or with an id that is not a string, number or null.
 */
export function parseJsonRpc(text: string): JsonRpcBody | undefined {
  let decoded: unknown;
  try {
    decoded = JSON.parse(text);
  } catch {
    return undefined;
  }
  const batch = Array.isArray(decoded);
  const entries = batch ? (decoded as unknown[]) : [decoded];
  if (entries.length === 0) return undefined;
  const messages: JsonRpcMessage[] = [];
  for (const entry of entries) {
    const message = toMessage(entry);
    if (message === undefined) return undefined;
    messages.push(message);
  }
  return { batch, messages };
}

function toMessage(entry: unknown): JsonRpcMessage | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
  const raw = entry as Record<string, unknown>;
  if (raw.jsonrpc !== '2.0') return undefined;
  const hasId = Object.hasOwn(raw, 'id');
  const id = raw.id;
  if (hasId && !isId(id)) return undefined;
  if (Object.hasOwn(raw, 'method')) {
    if (typeof raw.method !== 'string') return undefined;
    return hasId
      ? { kind: 'request', id: id as JsonRpcId, method: raw.method, params: raw.params, raw }
      : { kind: 'notification', method: raw.method, params: raw.params, raw };
  }
  if (hasId && (Object.hasOwn(raw, 'result') || Object.hasOwn(raw, 'error'))) return { kind: 'response', id: id as JsonRpcId, raw };
  return undefined;
}

function isId(value: unknown): boolean {
  return value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/** A JSON-RPC error response for `id`. */
export function errorResponse(id: JsonRpcId, code: number, message: string): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: { code, message } };
}

/** A key that tells ids apart by type too (`1` and `"1"` are different ids). */
export function idKey(id: JsonRpcId | undefined): string {
  return JSON.stringify(id ?? null);
}
