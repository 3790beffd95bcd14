/**
 * Test helpers: a long-lived `judge` instance run through core's pipeline (so one breaker,
 * semaphore and cache serve many requests), with the `env` secret source reading a given
 * environment, plain `fetch` as its HTTP client (the fakes listen on loopback) and a clock a
 * test can move.
 */
import {
  AuditBuilder,
  ConfigError,
  SecretRedactor,
  createPipeline,
  createSchemaValidator,
  createTransformEnv,
  toConfigIssues,
  type AuditRecord,
  type Clock,
  type Decision,
} from '@proxy/core';
import type { Meter } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { recordingLogger, testRequest, type LogEntry, type TestRequestInit } from '@proxy/core/testing';
import { judgeTransform } from '../src/index.js';

/** A clock that moves only when told to. */
export class FakeClock implements Clock {
  #now = 1_700_000_000_000;
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** What one request through a {@link LiveJudge} produced. */
export interface RunResult {
  readonly decision: Decision;
  readonly audit: AuditRecord;
  /** The annotations of the (first) judge's trace entry; empty when it did not annotate. */
  readonly annotations: Readonly<Record<string, unknown>>;
}

/** Judge instances (one pipeline) that serve many requests. */
export interface LiveJudge {
  run(init?: TestRequestInit): Promise<RunResult>;
  readonly logs: LogEntry[];
  readonly redactor: SecretRedactor;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly meter?: Meter;
  readonly clock?: Clock;
  readonly redactor?: SecretRedactor;
}

/** Validates each config (defaults applied), creates the judges in order as the proxy does, and keeps them open. */
export async function startJudges(configs: readonly unknown[], options: StartOptions = {}): Promise<LiveJudge> {
  const validate = createSchemaValidator().compile(judgeTransform.schema);
  const specs = configs.map((config, index) => {
    const copy = structuredClone(config);
    if (!validate(copy)) throw new ConfigError(toConfigIssues(validate.errors));
    return { definition: judgeTransform, config: copy, index };
  });
  const logs: LogEntry[] = [];
  const logger = recordingLogger(logs, {});
  const clock = options.clock ?? { now: () => Date.now() };
  const redactor = options.redactor ?? new SecretRedactor();
  const controller = new AbortController();
  const pipeline = await createPipeline(
    specs,
    (_spec, instanceId) =>
      createTransformEnv({
        instanceId,
        logger,
        clock,
        redactor,
        signal: controller.signal,
        ...(options.meter === undefined ? {} : { meter: options.meter }),
        http: (input, init) => fetch(input, init),
        env: options.env ?? { LLM_KEY: 'sk-test-judge-key-0001' },
      }),
    { clock, logger },
  );
  return {
    logs,
    redactor,
    async run(init = {}) {
      const request = testRequest(init);
      const audit = new AuditBuilder(request);
      const done = pipeline.enter();
      try {
        const decision = await pipeline.runRequest(request, audit);
        const record = audit.finish(decision.action === 'continue' ? 200 : decision.status, clock.now());
        return { decision, audit: record, annotations: record.request_transforms[0]?.annotations ?? {} };
      } finally {
        done();
      }
    },
    async close() {
      await pipeline.close();
      controller.abort();
    },
  };
}

/** A judge config on a fake provider, for `api.example.test`. */
export function judgeConfig(url: string, overrides: Record<string, unknown> = {}, type: 'anthropic' | 'openai' = 'anthropic'): Record<string, unknown> {
  return {
    name: 'repo-guard',
    prompt: 'Allow writes to the repository under review. Deny anything touching billing.',
    rules: [{ host: 'api.example.test' }],
    provider: { type, model: type === 'anthropic' ? 'claude-haiku-4-5-20251001' : 'gpt-5.4-nano', api_key_env: 'LLM_KEY', base_url: url },
    ...overrides,
  };
}

/** An OpenTelemetry meter whose counters a test reads back. */
export class TestMetrics {
  readonly #reader = new (class extends MetricReader {
    protected onShutdown(): Promise<void> {
      return Promise.resolve();
    }
    protected onForceFlush(): Promise<void> {
      return Promise.resolve();
    }
  })();
  readonly meter: Meter = new MeterProvider({ readers: [this.#reader] }).getMeter('test');

  /** Every data point of `name`, as its attributes and value. */
  async points(name: string): Promise<{ attributes: Record<string, unknown>; value: number }[]> {
    const { resourceMetrics } = await this.#reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((scope) =>
      scope.metrics.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints.map((p) => ({ attributes: { ...p.attributes }, value: p.value as number }))),
    );
  }
}
