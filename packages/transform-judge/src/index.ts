/**
 * `judge`: an LLM decides whether a request fits a written policy. Requests matching the
 * instance's `rules` are turned into a capped JSON envelope and sent, with a system prompt
 * embedding the policy, to Anthropic's Messages API or OpenAI's Chat Completions API. ALLOW
 * continues, DENY refuses with 403; an error, a timeout, a malformed answer or an open circuit
 * breaker applies the `fallback` (`deny` or `skip`). Beyond iron-proxy: a decision cache
 * (`cache_ttl`) and a shadow mode (`mode: shadow`) that decides and annotates but never blocks.
 */
import { createHash } from 'node:crypto';
import { CONTINUE, ConfigError, compileRules, defineTransform, reject, type Decision, type Trace, type TransformDefinition } from '@proxy/core';
import { LRUCache } from 'lru-cache';
import { CircuitBreaker } from './breaker.js';
import { judgeSchema, resolveSettings, type JudgeConfig, type JudgeInput } from './config.js';
import { buildEnvelope } from './envelope.js';
import { JudgeMetrics, type FallbackCause } from './metrics.js';
import { systemPrompt } from './prompt.js';
import { createProvider, type Completion } from './providers.js';
import { Semaphore } from './semaphore.js';
import { MAX_REASON_CHARS, parseVerdict, truncateChars, type Verdict } from './verdict.js';

export type { JudgeConfig, JudgeInput, ProviderConfig, ProviderType } from './config.js';
export { judgeSchema, DEFAULT_BASE_URLS } from './config.js';
export { buildEnvelope, ENVELOPE_LIMITS, PRIORITY_HEADERS } from './envelope.js';
export type { Envelope } from './envelope.js';
export type { MultipartSummary, MultipartPart } from './multipart.js';
export { systemPrompt } from './prompt.js';
export { parseVerdict } from './verdict.js';
export { MetricNames } from './metrics.js';
export type { Verdict } from './verdict.js';

/** Reject reason (403) of a request the model denied. */
export const JUDGE_DENIED = 'judge_denied';
/** Reject reason (403) of a request refused by the `deny` fallback. */
export const JUDGE_FALLBACK = 'judge_fallback';
/** Most characters of an unparsable model answer kept in `judge.raw_output`. */
export const MAX_RAW_OUTPUT_CHARS = 2048;

/** A cached decision: the verdict and the model that gave it. */
interface CachedVerdict {
  readonly verdict: Verdict;
  readonly model: string;
}

/** The `judge` transform definition. */
export const judgeTransform: TransformDefinition<JudgeConfig, JudgeInput> = defineTransform<JudgeConfig, JudgeInput>({
  name: 'judge',
  schema: judgeSchema,
  async create(config, env) {
    const settings = resolveSettings(config);
    const scope = compileRules(config.rules);
    const keyVar = config.provider.api_key_env;
    const handle = await env.secrets.open({ type: 'env', var: keyVar });
    await handle.ready();
    const apiKey = handle.available ? handle.value() : '';
    // The env source reads once and never refreshes: the handle is not needed past this point.
    handle.close();
    if (apiKey === '') {
      throw new ConfigError([{ path: 'provider.api_key_env', message: `environment variable ${keyVar} is not set or empty` }]);
    }
    // The key is a credential: no log line or audit record may show it.
    env.redactor.add(apiKey, keyVar);
    const provider = await createProvider({
      type: config.provider.type,
      model: config.provider.model,
      apiKey,
      baseUrl: settings.baseUrl,
      maxTokens: config.provider.max_tokens,
      http: env.http,
    });
    const system = systemPrompt(config.prompt);
    const breaker = new CircuitBreaker(config.circuit_breaker.consecutive_failures, settings.cooldownMs, env.clock);
    const slots = new Semaphore(config.max_concurrent);
    const cache =
      settings.cacheTtlMs === 0
        ? undefined
        : new LRUCache<string, CachedVerdict>({ max: config.cache_max_entries, ttl: settings.cacheTtlMs, perf: { now: () => env.clock.now() } });
    const shadow = config.mode === 'shadow';
    const metrics = new JudgeMetrics(env.meter, config.name);

    /** Writes the annotations of a decision and turns it into the pipeline's decision. */
    const conclude = (
      trace: Trace,
      started: number,
      verdict: Verdict,
      model: string,
      source: 'model' | 'cache',
      extra: Readonly<Record<string, string | number | boolean>>,
    ): Decision => {
      metrics.decided(verdict.decision, source);
      trace.annotate('judge.model', model);
      trace.annotate('judge.decision', verdict.decision);
      trace.annotate('judge.reason', verdict.reason);
      for (const [key, value] of Object.entries(extra)) trace.annotate(key, value);
      trace.annotate('judge.duration_ms', elapsed(started));
      if (verdict.decision === 'ALLOW' || shadow) return CONTINUE;
      return reject(403, JUDGE_DENIED, `request refused by the proxy: judge "${config.name}" denied it`);
    };

    /** Applies the fallback after a failure described by `reason`. */
    const fallback = (trace: Trace, started: number, cause: FallbackCause, reason: string, extra: Readonly<Record<string, string | boolean>> = {}): Decision => {
      const decision = config.fallback === 'deny' ? 'FALLBACK_DENY' : 'FALLBACK_ALLOW';
      metrics.decided(decision, 'fallback');
      metrics.fellBack(cause);
      trace.annotate('judge.model', config.provider.model);
      trace.annotate('judge.decision', decision);
      trace.annotate('judge.reason', truncateChars(reason, MAX_REASON_CHARS));
      trace.annotate('judge.fallback_applied', config.fallback);
      for (const [key, value] of Object.entries(extra)) trace.annotate(key, value);
      trace.annotate('judge.duration_ms', elapsed(started));
      if (config.fallback === 'skip' || shadow) return CONTINUE;
      return reject(403, JUDGE_FALLBACK, `request refused by the proxy: judge "${config.name}" could not decide`);
    };

    const elapsed = (started: number): number => Math.max(0, env.clock.now() - started);

    return {
      auditName: config.name,
      async onRequest(request, trace) {
        if (!scope.matches(request)) return CONTINUE;
        const started = env.clock.now();
        trace.annotate('judge.instance', config.name);
        if (shadow) trace.annotate('judge.shadow', true);
        // A body over the proxy's limit (413) or refused for want of memory (503) fails the
        // request with that status whatever the judge would say: the error propagates.
        const body = request.body.present ? await request.body.read() : undefined;
        const user = JSON.stringify(buildEnvelope(request, body, (text) => env.redactor.redact(text)));

        const key = cache === undefined ? undefined : createHash('sha256').update(user).digest('hex');
        const hit = key === undefined ? undefined : cache?.get(key);
        if (hit !== undefined) return conclude(trace, started, hit.verdict, hit.model, 'cache', { 'judge.cached': true });

        const admission = breaker.admit();
        if (admission === 'open') return fallback(trace, started, 'breaker_open', 'circuit breaker open', { 'judge.circuit_breaker_tripped': true });
        const release = await slots.acquire(settings.timeoutMs, env.signal);
        if (release === undefined) {
          breaker.release(admission);
          return fallback(trace, started, 'no_slot', `no LLM call slot free within ${config.timeout} (max_concurrent ${config.max_concurrent})`);
        }
        let completion: Completion;
        const timeout = AbortSignal.timeout(settings.timeoutMs);
        try {
          completion = await provider.complete({ system, user, signal: AbortSignal.any([env.signal, timeout]) });
        } catch (err) {
          breaker.record(admission, false);
          if (timeout.aborted) return fallback(trace, started, 'timeout', `LLM call timed out after ${config.timeout}`);
          return fallback(trace, started, 'error', `adapter error: ${describeError(err)}`);
        } finally {
          release();
        }
        const verdict = parseVerdict(completion.text);
        if (verdict === undefined) {
          breaker.record(admission, false);
          const raw = completion.text.length > MAX_RAW_OUTPUT_CHARS ? `${completion.text.slice(0, MAX_RAW_OUTPUT_CHARS)}...` : completion.text;
          return fallback(trace, started, 'malformed', 'malformed model output: expected {"decision":"ALLOW"|"DENY","reason":"..."}', { 'judge.raw_output': raw });
        }
        breaker.record(admission, true);
        const model = completion.model ?? config.provider.model;
        if (key !== undefined) cache!.set(key, { verdict, model });
        const usage: Record<string, number> = {};
        if (completion.inputTokens !== undefined) usage['judge.input_tokens'] = completion.inputTokens;
        if (completion.outputTokens !== undefined) usage['judge.output_tokens'] = completion.outputTokens;
        return conclude(trace, started, verdict, model, 'model', usage);
      },
    };
  },
});

/** A one-line description of a provider failure: the HTTP status and message, or the network cause. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const status = (err as { status?: unknown }).status;
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return typeof status === 'number' ? `HTTP ${status}: ${err.message}` : `${err.message}${cause}`;
}

export default judgeTransform;
