/**
 * The LLM backends, through their official SDKs: Anthropic's Messages API and OpenAI's Chat
 * Completions API. Both SDKs are given the transform's `fetch` (the proxy's guarded HTTP client,
 * so `upstream_deny_cidrs` and the upstream CA apply to the provider connection as to proxied
 * traffic), no retries (a retry is the breaker's and the fallback's business) and the caller's
 * abort signal (the judge's timeout). Each SDK is loaded when a judge using it is created:
 * together they hold about 30 MiB, which a proxy without a judge should not carry.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type { HttpClient } from '@proxy/core';
import type OpenAI from 'openai';
import type { ProviderType } from './config.js';

/** One judgement to ask for. */
export interface CompletionRequest {
  readonly system: string;
  readonly user: string;
  readonly signal: AbortSignal;
}

/** The model's answer. */
export interface Completion {
  /** The output text (Anthropic: the text blocks concatenated). */
  readonly text: string;
  /** The model the provider says answered. */
  readonly model: string | undefined;
  readonly inputTokens: number | undefined;
  readonly outputTokens: number | undefined;
}

/** A configured backend. */
export interface Provider {
  complete(request: CompletionRequest): Promise<Completion>;
}

/** What a backend is built from. */
export interface ProviderOptions {
  readonly type: ProviderType;
  readonly model: string;
  readonly apiKey: string;
  /** The API's base URL, without `/v1`. */
  readonly baseUrl: string;
  readonly maxTokens: number;
  readonly http: HttpClient;
}

/** Builds the backend of `options.type`, loading its SDK. */
export async function createProvider(options: ProviderOptions): Promise<Provider> {
  // The SDKs call fetch with a URL string; a Request is taken apart the same way for safety.
  const fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    options.http(input instanceof Request ? input.url : input, init);
  if (options.type === 'anthropic') {
    const { default: AnthropicClient } = await import('@anthropic-ai/sdk');
    return anthropicProvider(new AnthropicClient({ apiKey: options.apiKey, baseURL: options.baseUrl, fetch, maxRetries: 0 }), options);
  }
  const { default: OpenAIClient } = await import('openai');
  return openAiProvider(new OpenAIClient({ apiKey: options.apiKey, baseURL: `${options.baseUrl}/v1`, fetch, maxRetries: 0 }), options);
}

function anthropicProvider(client: Anthropic, options: ProviderOptions): Provider {
  return {
    async complete({ system, user, signal }) {
      const message = await client.messages.create(
        { model: options.model, max_tokens: options.maxTokens, system, messages: [{ role: 'user', content: user }] },
        { signal },
      );
      const text = message.content.map((block) => (block.type === 'text' ? block.text : '')).join('');
      return { text, model: message.model, inputTokens: message.usage.input_tokens, outputTokens: message.usage.output_tokens };
    },
  };
}

function openAiProvider(client: OpenAI, options: ProviderOptions): Provider {
  return {
    async complete({ system, user, signal }) {
      const completion = await client.chat.completions.create(
        {
          model: options.model,
          max_completion_tokens: options.maxTokens,
          messages: [
            { role: 'system', content: system },
            { role: 'user', content: user },
          ],
        },
        { signal },
      );
      return {
        text: completion.choices[0]?.message.content ?? '',
        model: completion.model,
        inputTokens: completion.usage?.prompt_tokens,
        outputTokens: completion.usage?.completion_tokens,
      };
    },
  };
}
