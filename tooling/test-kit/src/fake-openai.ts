import { randomUUID } from 'node:crypto';
import { startFakeLlm, type FakeLlm, type FakeLlmOptions, type LlmWireFormat } from './fake-llm.js';

/** OpenAI's error `type` for the statuses a client meets. */
function errorType(status: number): string {
  if (status === 401) return 'invalid_request_error';
  if (status === 429) return 'rate_limit_exceeded';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** The Chat Completions API (`POST /v1/chat/completions`) as OpenAI speaks it. */
const openAiFormat: LlmWireFormat = {
  path: '/v1/chat/completions',
  parse(body, headers) {
    if (typeof body !== 'object' || body === null) return 'body must be an object';
    const b = body as Record<string, unknown>;
    if (typeof b.model !== 'string' || b.model === '') return "you must provide a model parameter";
    if (!Array.isArray(b.messages) || b.messages.length === 0) return "'messages' must contain at least one message";
    const messages = b.messages as { role?: unknown; content?: unknown }[];
    const text = (roles: readonly string[]): string =>
      messages.filter((m) => typeof m.role === 'string' && roles.includes(m.role)).map((m) => contentText(m.content)).join('\n');
    const auth = headers.authorization;
    const bearer = typeof auth === 'string' && /^Bearer /i.test(auth) ? auth.slice(7) : undefined;
    const maxTokens = typeof b.max_completion_tokens === 'number' ? b.max_completion_tokens : typeof b.max_tokens === 'number' ? b.max_tokens : undefined;
    return { system: text(['system', 'developer']), user: text(['user']), model: b.model, maxTokens, apiKey: bearer };
  },
  success(call, answer) {
    return {
      id: `chatcmpl-fake${randomUUID().replace(/-/g, '').slice(0, 20)}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: call.model,
      choices: [{ index: 0, message: { role: 'assistant', content: answer.text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: answer.inputTokens, completion_tokens: answer.outputTokens, total_tokens: answer.inputTokens + answer.outputTokens },
    };
  },
  error(status, message) {
    return { error: { message, type: errorType(status), param: null, code: status === 401 ? 'invalid_api_key' : null } };
  },
};

/** Text of a chat message `content`: a string, or text parts. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((part): part is { type: 'text'; text: string } => typeof part === 'object' && part !== null && part.type === 'text' && typeof part.text === 'string')
    .map((part) => part.text)
    .join('');
}

/**
 * Starts a fake OpenAI Chat Completions API (`POST /v1/chat/completions`): it checks `model`
 * and `messages`, records each call's system (or developer) and user text and
 * `max_completion_tokens`, and answers with a `chat.completion` object (one choice, `usage`) or
 * an error envelope `{"error":{"message","type","param","code"}}`. The `openai` SDK talks to it
 * with `baseURL` set to `${url}/v1`.
 */
export function startFakeOpenAi(options: FakeLlmOptions = {}): Promise<FakeLlm> {
  return startFakeLlm(openAiFormat, options);
}
