/**
 * Test helpers: one long-lived a transform instance run through core's pipeline (so one cache
 * serves many requests), with a clock the test moves and an environment the test can change.
 */
import {
  AuditBuilder,
  ConfigError,
  createPipeline,
  createSchemaValidator,
  createTransformEnv,
  SecretRedactor,
  toConfigIssues,
  type AuditRecord,
  type Clock,
  type Decision,
  type HttpClient,
  type ProxyRequest,
} from '@proxy/core';
import { recordingLogger, testRequest, type LogEntry, type TestRequestInit } from '@proxy/core/testing';
import type { TransformDefinition } from '@proxy/core';

/** A clock that moves only when told to. */
export class FakeClock implements Clock {
  #now: number;
  constructor(start = Date.now()) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** What one request produced. */
export interface RunResult {
  readonly decision: Decision;
  readonly request: ProxyRequest;
  readonly audit: AuditRecord;
  /** The annotations a transform wrote. */
  readonly annotations: Readonly<Record<string, unknown>>;
}

/** One instance serving many requests. */
export interface LiveTransform {
  run(init?: TestRequestInit): Promise<RunResult>;
  readonly logs: LogEntry[];
  readonly redactor: SecretRedactor;
  close(): Promise<void>;
}

export interface StartOptions {
  /** The environment the `env` secret source reads; mutate it to rotate a value (with a `ttl`). */
  readonly env?: Record<string, string | undefined>;
  readonly clock?: Clock;
  /** Default: the global fetch. */
  readonly http?: HttpClient;
}

/** Validates `config` (defaults applied), creates the transform as the proxy does and keeps it open. */
export async function startTransform(definition: TransformDefinition, config: unknown, options: StartOptions = {}): Promise<LiveTransform> {
  const validate = createSchemaValidator().compile(definition.schema);
  const copy = structuredClone(config);
  if (!validate(copy)) throw new ConfigError(toConfigIssues(validate.errors));
  const logs: LogEntry[] = [];
  const logger = recordingLogger(logs, {});
  const clock = options.clock ?? { now: () => Date.now() };
  const controller = new AbortController();
  const redactor = new SecretRedactor();
  const pipeline = await createPipeline(
    [{ definition: definition, config: copy, index: 0 }],
    (_spec, instanceId) =>
      createTransformEnv({
        instanceId,
        logger,
        clock,
        redactor,
        signal: controller.signal,
        http: options.http ?? ((input, init) => fetch(input, init)),
        env: options.env ?? {},
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
        return { decision, request, audit: record, annotations: record.request_transforms[0]?.annotations ?? {} };
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

/** The token of a `Bearer` header. */
export function bearerOf(request: ProxyRequest, header = 'authorization'): string {
  const value = request.headers.get(header) ?? '';
  const m = /^Bearer (\S+)$/.exec(value);
  if (m === null) throw new Error(`no bearer token in ${header}: ${value.slice(0, 12)}...`);
  return m[1]!;
}
