import { createNoopMeter } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { AuditBuilder } from './audit.js';
import { ErrorCodes, ProxyError } from './errors.js';
import { createPipeline, type TransformSpec } from './pipeline.js';
import { SecretRedactor } from './redactor.js';
import { createSecretResolver, envSource } from './secrets.js';
import { testRequest } from './testing.js';
import { reject, respond, type Logger, type Transform, type TransformDefinition, type TransformEnv } from './transform.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
const clock = { now: () => Date.now() };

function envFor(_spec: TransformSpec, instanceId: string): TransformEnv {
  const signal = new AbortController().signal;
  const http = () => Promise.reject(new Error('offline'));
  return {
    logger: silent,
    secrets: createSecretResolver({ sources: [envSource], logger: silent, clock, http, signal, env: {} }),
    redactor: new SecretRedactor(),
    meter: createNoopMeter(),
    http,
    clock,
    signal,
    instanceId,
  };
}

/** A definition whose instance runs `hook` and records its calls in `log`. */
function definition(name: string, log: string[], hook: Transform['onRequest'], extra: Partial<Transform> = {}): TransformDefinition {
  return {
    name,
    schema: {},
    create: () => ({
      onRequest(request, trace) {
        log.push(name);
        return hook?.call(this, request, trace);
      },
      close() {
        log.push(`close:${name}`);
      },
      ...extra,
    }),
  };
}

async function pipelineOf(defs: TransformDefinition[]) {
  return createPipeline(
    defs.map((d, index) => ({ definition: d, config: {}, index })),
    envFor,
    { clock, logger: silent },
  );
}

async function run(defs: TransformDefinition[]) {
  const pipeline = await pipelineOf(defs);
  const request = testRequest();
  const audit = new AuditBuilder(request);
  const decision = await pipeline.runRequest(request, audit);
  return { pipeline, decision, record: audit.finish(decision.action === 'continue' ? 200 : decision.status, clock.now()) };
}

describe('Pipeline.runRequest', () => {
  it('runs every hook in order and continues when all pass', async () => {
    const log: string[] = [];
    const { decision, record } = await run([
      definition('a', log, (_r, trace) => trace.annotate('seen', true)),
      definition('b', log, () => undefined),
    ]);
    expect(log).toEqual(['a', 'b']);
    expect(decision.action).toBe('continue');
    expect(record.action).toBe('allow');
    expect(record.request_transforms.map((t) => [t.name, t.action])).toEqual([
      ['a', 'continue'],
      ['b', 'continue'],
    ]);
    expect(record.request_transforms[0]!.annotations).toEqual({ seen: true });
  });

  it('short-circuits on the first reject', async () => {
    const log: string[] = [];
    const { decision, record } = await run([
      definition('a', log, () => undefined),
      definition('b', log, () => reject(403, 'not_allowlisted')),
      definition('c', log, () => undefined),
    ]);
    expect(log).toEqual(['a', 'b']);
    expect(decision).toEqual({ action: 'reject', status: 403, reason: 'not_allowlisted' });
    expect(record).toMatchObject({ action: 'reject', rejected_by: 'b', reason: 'not_allowlisted', status_code: 403 });
    expect(record.request_transforms.map((t) => t.action)).toEqual(['continue', 'reject']);
  });

  it("records an instance by its traceName when it has one (trace entry and rejected_by)", async () => {
    const log: string[] = [];
    const { record } = await run([
      definition('annotate', log, () => undefined),
      definition('judge', log, () => reject(403, 'judge_denied'), { traceName: 'repo-guard' }),
    ]);
    expect(record.request_transforms.map((t) => t.name)).toEqual(['annotate', 'repo-guard']);
    expect(record).toMatchObject({ rejected_by: 'repo-guard', reason: 'judge_denied' });
  });

  it('short-circuits on respond and records a stub', async () => {
    const log: string[] = [];
    const { decision, record } = await run([
      definition('a', log, () => respond(200, '{"ok":true}', { 'content-type': 'application/json' }, 'token_stub')),
      definition('b', log, () => undefined),
    ]);
    expect(log).toEqual(['a']);
    expect(decision.action).toBe('respond');
    expect(record).toMatchObject({ action: 'stub', stubbed_by: 'a', reason: 'token_stub' });
    expect(record.request_transforms[0]).toMatchObject({ action: 'stub', annotations: { stubbed: 'token_stub' } });
  });

  it('fails closed with 502 when a hook throws, without the error message in the record', async () => {
    const log: string[] = [];
    const { decision, record } = await run([
      definition('a', log, () => {
        throw new TypeError('boom with sk-live-secret');
      }),
      definition('b', log, () => undefined),
    ]);
    expect(log).toEqual(['a']);
    expect(decision).toEqual({ action: 'reject', status: 502, reason: 'transform_error' });
    expect(record).toMatchObject({ action: 'error', rejected_by: 'a', reason: 'transform_error' });
    expect(record.request_transforms[0]).toMatchObject({ action: 'error', annotations: { error: 'TypeError' } });
    expect(JSON.stringify(record)).not.toContain('sk-live-secret');
  });

  it('turns a thrown 4xx ProxyError into a reject with its status', async () => {
    const log: string[] = [];
    const { decision, record } = await run([
      definition('a', log, async () => {
        throw new ProxyError(ErrorCodes.BODY_TOO_LARGE, 'too big', { status: 413, reason: 'body_too_large' });
      }),
    ]);
    expect(decision).toEqual({ action: 'reject', status: 413, reason: 'body_too_large' });
    expect(record).toMatchObject({ action: 'reject', rejected_by: 'a', reason: 'body_too_large' });
  });

  it('turns a thrown 5xx ProxyError into an error with its status', async () => {
    const { decision, record } = await run([
      definition('a', [], () => {
        throw new ProxyError(ErrorCodes.SECRET_UNAVAILABLE, 'gone', { status: 502, reason: 'secret_unavailable' });
      }),
    ]);
    expect(decision).toEqual({ action: 'reject', status: 502, reason: 'secret_unavailable' });
    expect(record).toMatchObject({ action: 'error', reason: 'secret_unavailable' });
  });

  it('runs synchronous and asynchronous hooks alike, in order, and reports which phases have hooks', async () => {
    const log: string[] = [];
    const { pipeline, decision, record } = await run([
      definition('sync', log, () => undefined),
      definition('async', log, async () => undefined),
      definition('last', log, () => reject(403, 'no')),
    ]);
    expect(log).toEqual(['sync', 'async', 'last']);
    expect(decision).toMatchObject({ action: 'reject', status: 403 });
    expect(record.request_transforms.map((t) => t.action)).toEqual(['continue', 'continue', 'reject']);
    expect([pipeline.hasRequestHooks, pipeline.hasResponseHooks]).toEqual([true, false]);
    const empty = await pipelineOf([{ name: 'quiet', schema: {}, create: () => ({}) }]);
    expect([empty.hasRequestHooks, empty.hasResponseHooks]).toEqual([false, false]);
  });

  it('answers synchronously while every hook does, and hands over to a promise at the first async hook', async () => {
    const log: string[] = [];
    const syncOnly = await pipelineOf([definition('a', log, () => undefined), definition('b', log, () => undefined)]);
    const request = testRequest();
    const direct = syncOnly.runRequest(request, new AuditBuilder(request));
    expect(direct).toEqual({ action: 'continue' });
    const mixed = await pipelineOf([definition('c', log, () => undefined), definition('d', log, async () => undefined), definition('e', log, () => reject(451, 'late'))]);
    const audit = new AuditBuilder(request);
    const pending = mixed.runRequest(request, audit);
    expect(pending).toBeInstanceOf(Promise);
    expect(log).toEqual(['a', 'b', 'c', 'd']);
    expect(await pending).toMatchObject({ action: 'reject', status: 451 });
    expect(log).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(audit.finish(451, 0)).toMatchObject({ rejected_by: 'e', request_transforms: [{ name: 'c' }, { name: 'd' }, { name: 'e', action: 'reject' }] });
  });

  it('fails closed when an asynchronous hook rejects midway', async () => {
    const log: string[] = [];
    const { decision, record } = await run([
      definition('a', log, async () => {
        throw new Error('backend down');
      }),
      definition('b', log, () => undefined),
    ]);
    expect(log).toEqual(['a']);
    expect(decision).toEqual({ action: 'reject', status: 502, reason: 'transform_error' });
    expect(record).toMatchObject({ action: 'error', rejected_by: 'a' });
  });

  it('skips transforms without an onRequest hook', async () => {
    const pipeline = await pipelineOf([{ name: 'quiet', schema: {}, create: () => ({}) }]);
    const request = testRequest();
    const audit = new AuditBuilder(request);
    expect((await pipeline.runRequest(request, audit)).action).toBe('continue');
    expect(audit.finish(200, 0).request_transforms).toEqual([]);
  });
});

describe('Pipeline.runTunnel', () => {
  it('runs only onTunnel hooks: transforms without one take no part in opening a tunnel', async () => {
    const log: string[] = [];
    const pipeline = await pipelineOf([
      // Would refuse any request: it must not be asked about a tunnel opening.
      definition('needs-headers', log, () => reject(403, 'header_missing')),
      definition('destinations', log, () => undefined, {
        onTunnel(request, trace) {
          log.push(`tunnel:${request.host}:${request.port}`);
          trace.annotate('checked', true);
        },
      }),
    ]);
    const request = testRequest({ host: 'api.example.com', port: 443, mode: 'tunnel', method: '', path: '' });
    const audit = new AuditBuilder(request);
    const decision = await pipeline.runTunnel(request, audit);
    expect(decision.action).toBe('continue');
    expect(log).toEqual(['tunnel:api.example.com:443']);
    expect(audit.finish(200, clock.now()).request_transforms).toEqual([
      expect.objectContaining({ name: 'destinations', action: 'continue', annotations: { checked: true } }),
    ]);
  });

  it('short-circuits on the first onTunnel reject and records who refused', async () => {
    const log: string[] = [];
    const pipeline = await pipelineOf([
      definition('first', log, () => undefined, { onTunnel: () => reject(403, 'not_allowlisted') }),
      definition('second', log, () => undefined, { onTunnel: () => void log.push('second') }),
    ]);
    const request = testRequest({ host: 'x.example.com', port: 443, mode: 'tunnel', method: '', path: '' });
    const audit = new AuditBuilder(request);
    const decision = await pipeline.runTunnel(request, audit);
    expect(decision).toMatchObject({ action: 'reject', status: 403, reason: 'not_allowlisted' });
    expect(log).toEqual([]);
    expect(audit.finish(403, clock.now())).toMatchObject({ action: 'reject', rejected_by: 'first' });
  });
});

describe('Pipeline lifecycle', () => {
  it('close() waits for in-flight requests, then closes in reverse order once', async () => {
    const log: string[] = [];
    const pipeline = await pipelineOf([definition('a', log, () => undefined), definition('b', log, () => undefined)]);
    const done = pipeline.enter();
    let closed = false;
    const closing = pipeline.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    expect(log).toEqual([]);
    done();
    done();
    await closing;
    expect(log).toEqual(['close:b', 'close:a']);
    await pipeline.close();
    expect(log).toEqual(['close:b', 'close:a']);
  });

  it('createPipeline closes what it created and names the failing instance', async () => {
    const log: string[] = [];
    const failing: TransformDefinition = {
      name: 'broken',
      schema: {},
      create: () => {
        throw new Error('cannot start');
      },
    };
    let caught: unknown;
    try {
      await pipelineOf([definition('a', log, () => undefined), failing]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProxyError);
    expect((caught as ProxyError).code).toBe(ErrorCodes.TRANSFORM_CREATE_FAILED);
    expect((caught as ProxyError).message).toContain('transforms[1] (broken): cannot start');
    expect(log).toEqual(['close:a']);
  });
});
