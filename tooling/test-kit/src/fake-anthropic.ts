import { randomUUID } from 'node:crypto';
import { startFakeLlm, type FakeLlm, type FakeLlmOptions, type LlmWireFormat } from './fake-llm.js';

/** Anthropic's error `type` for each HTTP status it documents. */
const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/** The Messages API (`POST /v1/messages`) as Anthropic speaks it. */
const anthropicFormat: LlmWireFormat = {
  path: '/v1/messages',
  parse(body, headers) {
    if (typeof body !== 'object' || body === null) return 'body must be an object';
    const b = body as Record<string, unknown>;
    if (typeof b.model !== 'string' || b.model === '') return 'model: Field required';
    if (typeof b.max_tokens !== 'number') return 'max_tokens: Field required';
    if (headers['anthropic-version'] === undefined) return 'anthropic-version: header is required';
    if (!Array.isArray(b.messages) || b.messages.length === 0) return 'messages: at least one message is required';
    const user = (b.messages as { role?: unknown; content?: unknown }[]).filter((m) => m.role === 'user').map((m) => contentText(m.content)).join('\n');
    // The SDK sends the key as `x-api-key` or as a Bearer token, as the API accepts both.
    const apiKey = headers['x-api-key'];
    const auth = headers.authorization;
    const bearer = typeof auth === 'string' && /^Bearer /i.test(auth) ? auth.slice(7) : undefined;
    return {
      system: contentText(b.system),
      user,
      model: b.model,
      maxTokens: b.max_tokens,
      apiKey: typeof apiKey === 'string' ? apiKey : bearer,
    };
  },
  success(call, answer) {
    return {
      id: `msg_fake_${randomUUID().replace(/-/g, '').slice(0, 20)}`,
      type: 'message',
      role: 'assistant',
      model: call.model,
      content: [{ type: 'text', text: answer.text }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: answer.inputTokens, output_tokens: answer.outputTokens },
    };
  },
  error(status, message) {
    return { type: 'error', error: { type: ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message } };
  },
};

/** Text of a Messages API `system` or `content` field: a string, or text blocks. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((block): block is { type: 'text'; text: string } => typeof block === 'object' && block !== null && block.type === 'text' && typeof block.text === 'string')
    .map((block) => block.text)
    .join('');
}

/**
 * Starts a fake Anthropic Messages API (`POST /v1/messages`): it checks `model`, `max_tokens`,
 * `messages` and the `anthropic-version` header as the real API does, takes the key from
 * `x-api-key` or a Bearer token, records each call's system prompt and user text, and answers with a `message` object (one text block, `usage`)
 * or an error envelope `{"type":"error","error":{"type","message"}}`. `@anthropic-ai/sdk`
 * talks to it with `baseURL` set to its `url`.
 */
export function startFakeAnthropic(options: FakeLlmOptions = {}): Promise<FakeLlm> {
  return startFakeLlm(anthropicFormat, options);
}
