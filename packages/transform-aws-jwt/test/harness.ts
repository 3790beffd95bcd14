/**
 * Test helpers: a long-lived `aws_jwt` instance run through core's pipeline (so one cache
 * serves many requests), a fake clock, an in-memory metrics reader, and a JWT verifier that
 * follows the fake STS's discovery document like a third-party API would.
 */
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { Meter } from '@opentelemetry/api';
import {
  AuditBuilder,
  ConfigError,
  createPipeline,
  createSchemaValidator,
  createTransformEnv,
  toConfigIssues,
  type AuditRecord,
  type Clock,
  type Decision,
  type ProxyRequest,
} from '@proxy/core';
import { recordingLogger, testRequest, type LogEntry, type TestRequestInit } from '@proxy/core/testing';
import type { FakeSts } from '@proxy/test-kit';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyResult } from 'jose';
import { awsJwtTransform } from '../src/index.js';

/** Points the AWS SDK's default chains at the fake STS, with static credentials and no host config. */
export function useFakeStsEnvironment(sts: FakeSts, credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }): void {
  process.env.AWS_ENDPOINT_URL_STS = sts.url;
  process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/aws-credentials';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

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

/** An OpenTelemetry meter whose values a test reads back. */
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

  /** The sum of every data point of `name` whose attributes include `attributes` (0 when none). */
  async value(name: string, attributes: Record<string, string> = {}): Promise<number> {
    const { resourceMetrics } = await this.#reader.collect();
    let total = 0;
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        if (metric.descriptor.name !== name) continue;
        for (const point of metric.dataPoints) {
          if (Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) total += point.value as number;
        }
      }
    }
    return total;
  }

  /** The attribute sets of every data point of `name`. */
  async attributes(name: string): Promise<Record<string, unknown>[]> {
    const { resourceMetrics } = await this.#reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints.map((p) => ({ ...p.attributes }))));
  }
}

/** What one request through a {@link LiveTransform} produced. */
export interface RunResult {
  readonly decision: Decision;
  readonly request: ProxyRequest;
  readonly audit: AuditRecord;
  /** The annotations `aws_jwt` wrote to its trace entry. */
  readonly annotations: Readonly<Record<string, unknown>>;
}

/** One `aws_jwt` instance that serves many requests. */
export interface LiveTransform {
  run(init?: TestRequestInit): Promise<RunResult>;
  readonly logs: LogEntry[];
  close(): Promise<void>;
}

/** Validates `config` (defaults applied), creates the transform as the proxy does, and keeps it open. */
export async function startTransform(config: unknown, options: { clock?: Clock; meter?: Meter } = {}): Promise<LiveTransform> {
  const validate = createSchemaValidator().compile(awsJwtTransform.schema);
  const copy = structuredClone(config);
  if (!validate(copy)) throw new ConfigError(toConfigIssues(validate.errors));
  const logs: LogEntry[] = [];
  const logger = recordingLogger(logs, {});
  const clock = options.clock ?? { now: () => Date.now() };
  const controller = new AbortController();
  const pipeline = await createPipeline(
    [{ definition: awsJwtTransform, config: copy, index: 0 }],
    (_spec, instanceId) =>
      createTransformEnv({
        instanceId,
        logger,
        clock,
        signal: controller.signal,
        http: () => Promise.reject(new Error('aws_jwt must not use the proxy HTTP client')),
        ...(options.meter === undefined ? {} : { meter: options.meter }),
      }),
    { clock, logger },
  );
  return {
    logs,
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

/** The JWT of an `Authorization: Bearer` header. */
export function bearerToken(request: ProxyRequest): string {
  const value = request.headers.get('authorization') ?? '';
  const m = /^Bearer ([\w-]+\.[\w-]+\.[\w-]+)$/.exec(value);
  if (m === null) throw new Error(`not a bearer JWT: ${value.slice(0, 20)}...`);
  return m[1]!;
}

/**
 * Verifies a token the way a relying party does: discovery document of the expected issuer,
 * its JWKS, then signature, `iss`, `aud` and `exp`.
 */
export async function verifyAsRelyingParty(token: string, sts: FakeSts, audience: string | string[], currentDate?: Date): Promise<JWTVerifyResult<JWTPayload>> {
  const discovery = (await (await fetch(`${sts.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
  return jwtVerify(token, createRemoteJWKSet(new URL(discovery.jwks_uri)), {
    issuer: sts.issuer,
    audience,
    requiredClaims: ['exp', 'iat', 'sub'],
    ...(currentDate === undefined ? {} : { currentDate }),
  });
}
