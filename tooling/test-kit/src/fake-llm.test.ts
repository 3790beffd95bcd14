import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic } from './fake-anthropic.js';
import { llmDecision, type FakeLlm } from './fake-llm.js';
import { startFakeOpenAi } from './fake-openai.js';

let fake: FakeLlm | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

describe('fake Anthropic Messages API through @anthropic-ai/sdk', () => {
  const client = (f: FakeLlm, apiKey = 'sk-ant-test-key') => new Anthropic({ apiKey, baseURL: f.url, maxRetries: 0 });

  it('answers a message with the scripted text and usage, and records the call', async () => {
    fake = await startFakeAnthropic({ apiKey: 'sk-ant-test-key', responder: () => ({ text: llmDecision('DENY', 'billing'), inputTokens: 321, outputTokens: 7 }) });
    const message = await client(fake).messages.create({
      model: 'claude-haiku-4-5-20251001',
      max_tokens: 256,
      system: 'the system prompt',
      messages: [{ role: 'user', content: '{"method":"POST"}' }],
    });
    expect(message.type).toBe('message');
    expect(message.model).toBe('claude-haiku-4-5-20251001');
    expect(message.content).toEqual([{ type: 'text', text: '{"decision":"DENY","reason":"billing"}' }]);
    expect(message.usage).toMatchObject({ input_tokens: 321, output_tokens: 7 });
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]).toMatchObject({ system: 'the system prompt', user: '{"method":"POST"}', model: 'claude-haiku-4-5-20251001', maxTokens: 256, apiKey: 'sk-ant-test-key' });
  });

  it('reports scripted errors as the SDK error classes, with the status', async () => {
    fake = await startFakeAnthropic({ responder: () => ({ status: 529, message: 'Overloaded' }) });
    const call = client(fake).messages.create({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    await expect(call).rejects.toBeInstanceOf(Anthropic.APIError);
    await expect(call).rejects.toMatchObject({ status: 529, error: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } });
  });

  it('refuses a wrong API key with 401 authentication_error', async () => {
    fake = await startFakeAnthropic({ apiKey: 'sk-ant-right' });
    await expect(client(fake, 'sk-ant-wrong').messages.create({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
  });

  it('hangs until the client gives up, and counts calls in flight', async () => {
    fake = await startFakeAnthropic({ responder: () => ({ hang: true }) });
    const call = client(fake).messages.create({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }, { timeout: 200 });
    await expect(call).rejects.toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    expect(fake.maxInFlight).toBe(1);
  });

  it('drops the connection: a connection error', async () => {
    fake = await startFakeAnthropic({ responder: () => ({ drop: true }) });
    await expect(client(fake).messages.create({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(
      Anthropic.APIConnectionError,
    );
  });
});

describe('fake OpenAI Chat Completions API through the openai SDK', () => {
  const client = (f: FakeLlm, apiKey = 'sk-openai-test') => new OpenAI({ apiKey, baseURL: `${f.url}/v1`, maxRetries: 0 });

  it('answers a completion with the scripted text and usage, and records the call', async () => {
    fake = await startFakeOpenAi({ apiKey: 'sk-openai-test', responder: () => ({ text: '```json\n{"decision":"allow"}\n```', inputTokens: 50, outputTokens: 5 }) });
    const completion = await client(fake).chat.completions.create({
      model: 'gpt-5.4-nano',
      max_completion_tokens: 64,
      messages: [
        { role: 'system', content: 'policy here' },
        { role: 'user', content: 'envelope here' },
      ],
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.content).toBe('```json\n{"decision":"allow"}\n```');
    expect(completion.usage).toMatchObject({ prompt_tokens: 50, completion_tokens: 5 });
    expect(fake.calls[0]).toMatchObject({ system: 'policy here', user: 'envelope here', model: 'gpt-5.4-nano', maxTokens: 64, apiKey: 'sk-openai-test' });
  });

  it('reports scripted errors as the SDK error classes, with the status', async () => {
    fake = await startFakeOpenAi({ responder: () => ({ status: 500, message: 'The server had an error' }) });
    const call = client(fake).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    await expect(call).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await expect(call).rejects.toMatchObject({ status: 500, error: { message: 'The server had an error', type: 'server_error' } });
  });

  it('refuses a wrong API key with 401', async () => {
    fake = await startFakeOpenAi({ apiKey: 'sk-right' });
    await expect(client(fake, 'sk-wrong').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
  });

  it('answers slowly after delayMs', async () => {
    fake = await startFakeOpenAi({ responder: () => ({ text: llmDecision('ALLOW'), delayMs: 150 }) });
    const started = Date.now();
    await client(fake).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});
