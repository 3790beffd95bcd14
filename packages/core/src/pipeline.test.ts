import { createNoopMeter } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { AuditBuilder } from './audit.js';
import { ErrorCodes, ProxyError } from './errors.js';
import { createPipeline, type TransformSpec } from './pipeline.js';
import { SecretRedactor } from './redactor.js';
import { createSecretResolver, envSource } from './secrets.js';
import { testRequest } from './testing.js';
import { reject, respond, retarget, type Logger, type Transform, type TransformDefinition, type TransformEnv } from './transform.js';

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
    configDir: process.cwd(),
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
      ['a', 'allow'],
      ['b', 'allow'],
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
    expect(record.request_transforms.map((t) => t.action)).toEqual(['allow', 'reject']);
  });

  it("records an instance by its auditName when it has one (trace entry and rejected_by)", async () => {
    const log: string[] = [];
    const { record } = await run([
      definition('annotate', log, () => undefined),
      definition('judge', log, () => reject(403, 'judge_denied'), { auditName: 'repo-guard' }),
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
    expect(record.request_transforms.map((t) => t.action)).toEqual(['allow', 'allow', 'reject']);
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
      expect.objectContaining({ name: 'destinations', action: 'allow', annotations: { checked: true } }),
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

  it('close(drainTimeoutMs) closes the transforms under requests still running once the bound passes, and says so', async () => {
    const log: string[] = [];
    const warnings: unknown[] = [];
    const logger: Logger = { ...silent, warn: (fields: unknown) => void warnings.push(fields), child: () => logger };
    const pipeline = await createPipeline([{ definition: definition('a', log, () => undefined), config: {}, index: 0 }], envFor, { clock, logger, generation: 7 });
    expect(pipeline.generation).toBe(7);
    const done = pipeline.enter();
    pipeline.enter();
    expect(pipeline.inFlight).toBe(2);
    done();
    const started = Date.now();
    await pipeline.close(40);
    expect(Date.now() - started).toBeGreaterThanOrEqual(35);
    expect(log).toEqual(['close:a']);
    expect(warnings).toEqual([expect.objectContaining({ generation: 7, in_flight: 1, drain_timeout_ms: 40 })]);
  });

  it('close(drainTimeoutMs) does not wait for the bound once the last request is done', async () => {
    const log: string[] = [];
    const pipeline = await pipelineOf([definition('a', log, () => undefined)]);
    const done = pipeline.enter();
    const closing = pipeline.close(60_000);
    setTimeout(done, 10);
    await closing;
    expect(log).toEqual(['close:a']);
    expect(pipeline.generation).toBeUndefined();
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

describe('Pipeline and secrets on their first fetch', () => {
  // A backend that answers once `release` is called.
  function slowSource() {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const source = {
      type: 'slow',
      schema: { type: 'object', properties: { name: { type: 'string' } } },
      label: (c: { name?: string }) => `slow:${c.name ?? ''}`,
      create: () => ({ fetch: () => released.then(() => 'the-value') }),
    };
    return { source, release };
  }
  function transformReading(waitsForSecrets: boolean, seen: string[]): TransformDefinition {
    return {
      name: 'reader',
      schema: {},
      waitsForSecrets,
      async create(_config, env) {
        const handle = await env.secrets.open({ type: 'slow', name: 'k' });
        return {
          onRequest() {
            seen.push(handle.pending ? 'pending' : handle.value());
            return undefined;
          },
          close: () => handle.close(),
        };
      },
    };
  }
  async function pipelineWith(def: TransformDefinition, source: ReturnType<typeof slowSource>['source']) {
    const signal = new AbortController().signal;
    const http = () => Promise.reject(new Error('offline'));
    const secrets = createSecretResolver({ sources: [envSource, source as never], logger: silent, clock, http, signal, env: {} });
    return createPipeline([{ definition: def, config: {}, index: 0 }], (spec, id) => ({ ...envFor(spec, id), secrets }), { clock, logger: silent });
  }

  it('runs a hook only once the secrets its transform opened have settled', async () => {
    const { source, release } = slowSource();
    const seen: string[] = [];
    const pipeline = await pipelineWith(transformReading(false, seen), source);
    const request = testRequest();
    const decided = pipeline.runRequest(request, new AuditBuilder(request));
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([]);
    release();
    expect((await decided).action).toBe('continue');
    expect(seen).toEqual(['the-value']);
    await pipeline.close();
  });

  it('leaves the waiting to a transform that declares waitsForSecrets', async () => {
    const { source, release } = slowSource();
    const seen: string[] = [];
    const pipeline = await pipelineWith(transformReading(true, seen), source);
    const request = testRequest();
    await pipeline.runRequest(request, new AuditBuilder(request));
    expect(seen).toEqual(['pending']);
    release();
    await pipeline.close();
  });
});

describe('Pipeline: re-targeting a request', () => {
  /** A destination decider that allows only the hosts in `allowed`, recording what it saw. */
  function decider(log: string[], allowed: string[]): TransformDefinition {
    return {
      ...definition('allowlist', log, (request) => {
        log.push(`allowlist saw ${request.host}:${request.port}`);
        return allowed.includes(request.host) ? undefined : reject(403, 'not_allowlisted');
      }),
      decidesDestinations: true,
    };
  }

  async function runOn(defs: TransformDefinition[], init: Parameters<typeof testRequest>[0] = {}) {
    const pipeline = await pipelineOf(defs);
    const request = testRequest({ host: 'api.example.com', ...init });
    const audit = new AuditBuilder(request);
    const decision = await pipeline.runRequest(request, audit);
    return { request, decision, record: audit.finish(decision.action === 'continue' ? 200 : decision.status, clock.now()) };
  }

  it('switches host, port and Host header, re-runs the deciders before it on the new host, then the rest', async () => {
    const log: string[] = [];
    const { request, decision, record } = await runOn([
      decider(log, ['api.example.com', 'mirror.example.com']),
      definition('router', log, async () => retarget('Mirror.Example.com.', 8080)),
      definition('after', log, (r) => void log.push(`after saw ${r.host}`)),
    ]);
    expect(decision.action).toBe('continue');
    expect(request.host).toBe('mirror.example.com');
    expect(request.port).toBe(8080);
    expect(request.headers.getAll('host')).toEqual(['mirror.example.com:8080']);
    expect(log).toEqual(['allowlist', 'allowlist saw api.example.com:80', 'router', 'allowlist', 'allowlist saw mirror.example.com:8080', 'after', 'after saw mirror.example.com']);
    expect(record.host).toBe('api.example.com');
    expect(record.request_transforms.map((t) => t.name)).toEqual(['allowlist', 'router', 'allowlist', 'after']);
    expect(record.request_transforms[1]).toMatchObject({ action: 'allow', annotations: { retarget: 'mirror.example.com:8080' } });
  });

  it('refuses the request when a decider does not allow the new host', async () => {
    const log: string[] = [];
    const { decision, record } = await runOn([decider(log, ['api.example.com']), definition('router', log, () => retarget('evil.example.net', 80))]);
    expect(decision).toMatchObject({ action: 'reject', status: 403, reason: 'not_allowlisted' });
    expect(record).toMatchObject({ action: 'reject', rejected_by: 'allowlist' });
  });

  it('refuses (502 retarget_unsafe) when a transform other than a decider ran before', async () => {
    const log: string[] = [];
    const { request, decision, record } = await runOn([
      definition('secrets', log, (r) => r.headers.set('Authorization', 'Bearer real')),
      definition('router', log, () => retarget('mirror.example.com', 80)),
    ]);
    expect(decision).toMatchObject({ action: 'reject', status: 502, reason: 'retarget_unsafe' });
    expect(record).toMatchObject({ action: 'error', reason: 'retarget_unsafe', rejected_by: 'router' });
    expect(request.host).toBe('api.example.com');
  });

  it('honours a re-target by configured routes after other transforms, re-running only the deciders', async () => {
    const log: string[] = [];
    const gateway: TransformDefinition = {
      ...definition('gateway', log, (r) => {
        r.path = '/upstream/mcp';
        return retarget('mcp-upstream.example.com', 8443, 'https');
      }),
      routesByConfig: true,
    };
    const { request, decision, record } = await runOn([
      decider(log, ['api.example.com', 'mcp-upstream.example.com']),
      definition('secrets', log, (r) => r.headers.set('Authorization', 'Bearer real')),
      gateway,
    ]);
    expect(decision.action).toBe('continue');
    expect(request).toMatchObject({ scheme: 'https', host: 'mcp-upstream.example.com', port: 8443, path: '/upstream/mcp' });
    expect(request.headers.getAll('host')).toEqual(['mcp-upstream.example.com:8443']);
    // secrets ran once: the deciders alone decide again on the new destination.
    expect(log).toEqual(['allowlist', 'allowlist saw api.example.com:80', 'secrets', 'gateway', 'allowlist', 'allowlist saw mcp-upstream.example.com:8443']);
    expect(record.request_transforms[2]).toMatchObject({ name: 'gateway', annotations: { retarget: 'https://mcp-upstream.example.com:8443' } });
  });

  it('refuses a configured route whose upstream the deciders do not allow', async () => {
    const log: string[] = [];
    const gateway: TransformDefinition = { ...definition('gateway', log, () => retarget('elsewhere.example.net', 443, 'https')), routesByConfig: true };
    const { decision, record } = await runOn([decider(log, ['api.example.com']), definition('secrets', log, () => undefined), gateway]);
    expect(decision).toMatchObject({ action: 'reject', status: 403, reason: 'not_allowlisted' });
    expect(record).toMatchObject({ rejected_by: 'allowlist' });
  });

  it('re-targets at most once', async () => {
    const log: string[] = [];
    const { decision } = await runOn([definition('a', log, () => retarget('b.example.com', 80)), definition('b', log, () => retarget('c.example.com', 80))]);
    expect(decision).toMatchObject({ action: 'reject', status: 502, reason: 'retarget_unsafe' });
  });

  it('refuses passthrough requests and invalid destinations, re-targets requests inside tunnels', async () => {
    const log: string[] = [];
    const router = (host: string, port = 80) => definition('router', log, () => retarget(host, port));
    expect((await runOn([router('b.example.com')], { mode: 'sni-only' })).decision).toMatchObject({ status: 502, reason: 'retarget_unsupported' });
    expect((await runOn([router('exa mple.com')])).decision).toMatchObject({ status: 502, reason: 'retarget_invalid' });
    expect((await runOn([router('b.example.com', 0)])).decision).toMatchObject({ status: 502, reason: 'retarget_invalid' });
    const tunnelled = await runOn([router('b.example.com', 8443)], { scheme: 'https', tunnel: { protocol: 'connect', target: 'api.example.com:443', decision: 'allow' } });
    expect(tunnelled.decision.action).toBe('continue');
    expect(tunnelled.request.host).toBe('b.example.com');
    const ipv6 = await runOn([router('[2001:db8::1]', 443)], { scheme: 'https' });
    expect(ipv6.request.host).toBe('2001:db8::1');
    expect(ipv6.request.headers.get('host')).toBe('[2001:db8::1]');
  });
});

describe('createPipeline: audit names', () => {
  it('names trace entries and rejected_by after the instance\'s auditName', async () => {
    const log: string[] = [];
    const { record } = await run([definition('grpc', log, () => reject(403, 'denied'), { auditName: 'policy-engine' })]);
    expect(record.request_transforms[0]!.name).toBe('policy-engine');
    expect(record.rejected_by).toBe('policy-engine');
  });
});
