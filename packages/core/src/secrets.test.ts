import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes, ProxyError } from './errors.js';
import { SecretRedactor } from './redactor.js';
import { createSecretResolver, envSource, type SecretSourceDefinition } from './secrets.js';
import type { Logger } from './transform.js';

interface LogCall {
  level: string;
  obj: object | string;
  msg: string | undefined;
}

function recordingLogger(calls: LogCall[]): Logger {
  const at = (level: string) => (obj: object | string, msg?: string) => void calls.push({ level, obj, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

/** A backend whose value and failures the test controls. */
function scriptedSource(): { definition: SecretSourceDefinition; next: { value: string | Error }; fetches: number } {
  const state = { next: { value: 'v1' as string | Error }, fetches: 0, definition: undefined as unknown as SecretSourceDefinition };
  state.definition = {
    type: 'scripted',
    properties: { name: { type: 'string' } },
    required: ['name'],
    label: (c) => `scripted:${String(c.name)}`,
    create: () => ({
      fetch: () => {
        state.fetches++;
        const v = state.next.value;
        return v instanceof Error ? Promise.reject(v) : Promise.resolve(v);
      },
    }),
  };
  return state;
}

const noHttp = () => Promise.reject(new Error('no network in tests'));
const clock = { now: () => Date.now() };

function thrown(fn: () => unknown): ProxyError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyError);
    return err as ProxyError;
  }
  throw new Error('expected a throw');
}

async function caught(promise: Promise<unknown>): Promise<ProxyError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyError);
    return err as ProxyError;
  }
  throw new Error('expected a rejection');
}

describe('envSource', () => {
  const context = { logger: recordingLogger([]), http: noHttp, env: { SET: 'value-1', EMPTY: '' } };

  it('reads the variable', async () => {
    await expect(envSource.create({ type: 'env', var: 'SET' }, context).fetch(new AbortController().signal)).resolves.toBe('value-1');
  });

  it.each(['MISSING', 'EMPTY'])('rejects %s with SECRET_UNAVAILABLE naming the variable', async (name) => {
    const err = await caught(envSource.create({ type: 'env', var: name }, context).fetch(new AbortController().signal));
    expect(err.code).toBe(ErrorCodes.SECRET_UNAVAILABLE);
    expect(err.status).toBe(502);
    expect(err.message).toContain(name);
  });

  it('labels the secret with the variable name', () => {
    expect(envSource.label({ type: 'env', var: 'OPENAI_API_KEY' })).toBe('OPENAI_API_KEY');
  });
});

describe('createSecretResolver', () => {
  const controller = new AbortController();
  const base = { sources: [envSource], logger: recordingLogger([]), clock, http: noHttp, signal: controller.signal };

  it('opens an env secret', async () => {
    const handle = await createSecretResolver({ ...base, env: { TOKEN: 'tok-123' } }).open({ type: 'env', var: 'TOKEN' });
    expect(handle.label).toBe('TOKEN');
    expect(handle.value()).toBe('tok-123');
    handle.close();
  });

  it('reads process.env by default', async () => {
    process.env.PROXY_CORE_TEST_SECRET = 'from-process';
    try {
      const handle = await createSecretResolver(base).open({ type: 'env', var: 'PROXY_CORE_TEST_SECRET' });
      expect(handle.value()).toBe('from-process');
    } finally {
      delete process.env.PROXY_CORE_TEST_SECRET;
    }
  });

  it('opens an unavailable handle, without failing, when the first fetch fails', async () => {
    const logs: LogCall[] = [];
    const resolver = createSecretResolver({ ...base, env: {}, logger: recordingLogger(logs) });
    const handle = await resolver.open({ type: 'env', var: 'NOPE' });
    expect(handle.available).toBe(false);
    expect(handle.label).toBe('NOPE');
    expect(handle.type).toBe('env');
    expect(thrown(() => handle.value()).code).toBe(ErrorCodes.SECRET_UNAVAILABLE);
    expect(resolver.handles()).toEqual([handle]);
    expect(logs.map((l) => l.level)).toEqual(['warn']);
    expect(JSON.stringify(logs)).toContain('NOPE');
    handle.close();
    expect(resolver.handles()).toEqual([]);
  });

  it('wraps a backend failure as SECRET_UNAVAILABLE naming the secret', async () => {
    const s = scriptedSource();
    s.next.value = new Error('connection refused');
    const handle = await createSecretResolver({ ...base, sources: [s.definition] }).open({ type: 'scripted', name: 'a' });
    const err = thrown(() => handle.value());
    expect(err.code).toBe(ErrorCodes.SECRET_UNAVAILABLE);
    expect(err.message).toContain('scripted:a');
    expect(err.message).toContain('connection refused');
    handle.close();
  });

  it('registers every fetched value with the redactor', async () => {
    const redactor = new SecretRedactor();
    const handle = await createSecretResolver({ ...base, env: { TOKEN: 'tok-123456' }, redactor }).open({ type: 'env', var: 'TOKEN' });
    expect(redactor.redact('x tok-123456 y')).toBe('x [redacted:TOKEN] y');
    handle.close();
  });

  it('rejects an unknown source type listing the known ones', async () => {
    const err = await caught(createSecretResolver(base).open({ type: 'vault' }));
    expect(err.code).toBe(ErrorCodes.SECRET_SOURCE_UNKNOWN);
    expect(err.message).toContain('env');
  });

  describe('json_key', () => {
    const json = JSON.stringify({ client_id: 'id-1', client_secret: 'hunter2-secret', n: 42, nested: { a: 1 }, nothing: null });
    const resolver = createSecretResolver({ ...base, env: { JSON_SECRET: json, PLAIN: 'hunter2-plain', ARRAY: '["hunter2-array"]' } });

    it.each([
      ['client_id', 'id-1'],
      ['client_secret', 'hunter2-secret'],
      ['n', '42'],
      ['nested', '{"a":1}'],
    ])('extracts %s', async (key, value) => {
      expect((await resolver.open({ type: 'env', var: 'JSON_SECRET', json_key: key })).value()).toBe(value);
    });

    it.each([
      ['JSON_SECRET', 'missing'],
      ['JSON_SECRET', 'nothing'],
      ['JSON_SECRET', 'toString'],
      ['PLAIN', 'client_id'],
      ['ARRAY', '0'],
    ])('%s json_key %s fails with SECRET_JSON_KEY without the value', async (name, key) => {
      const handle = await resolver.open({ type: 'env', var: name, json_key: key });
      expect(handle.available).toBe(false);
      const err = thrown(() => handle.value());
      handle.close();
      expect(err.code).toBe(ErrorCodes.SECRET_JSON_KEY);
      expect(err.message).toContain(name);
      expect(err.message).not.toContain('hunter2');
      expect(String(err.cause ?? '')).not.toContain('hunter2');
    });
  });

  describe('ttl refresh', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('refreshes in the background and keeps the last good value on failure', async () => {
      const s = scriptedSource();
      const logs: LogCall[] = [];
      const handle = await createSecretResolver({ ...base, sources: [s.definition], logger: recordingLogger(logs) }).open({
        type: 'scripted',
        name: 'k',
        ttl: '1m',
      });
      expect(handle.value()).toBe('v1');
      expect(s.fetches).toBe(1);

      s.next.value = 'v2';
      await vi.advanceTimersByTimeAsync(59_000);
      expect(handle.value()).toBe('v1');
      await vi.advanceTimersByTimeAsync(1_000);
      expect(handle.value()).toBe('v2');
      expect(s.fetches).toBe(2);

      s.next.value = new Error('backend down');
      await vi.advanceTimersByTimeAsync(60_000);
      expect(s.fetches).toBe(3);
      expect(handle.value()).toBe('v2');
      expect(logs).toHaveLength(1);
      expect(logs[0]!.level).toBe('warn');
      expect(JSON.stringify(logs)).toContain('scripted:k');
      expect(JSON.stringify(logs)).not.toContain('v2');

      s.next.value = 'v3';
      await vi.advanceTimersByTimeAsync(60_000);
      expect(handle.value()).toBe('v3');

      handle.close();
      s.next.value = 'v4';
      await vi.advanceTimersByTimeAsync(600_000);
      expect(handle.value()).toBe('v3');
      expect(s.fetches).toBe(4);
    });

    it('keeps the last value when a refreshed value loses its json_key', async () => {
      const s = scriptedSource();
      s.next.value = '{"k":"good"}';
      const logs: LogCall[] = [];
      const handle = await createSecretResolver({ ...base, sources: [s.definition], logger: recordingLogger(logs) }).open({
        type: 'scripted',
        name: 'j',
        json_key: 'k',
        ttl: '10s',
      });
      s.next.value = 'not json hunter2';
      await vi.advanceTimersByTimeAsync(10_000);
      expect(handle.value()).toBe('good');
      expect(logs).toHaveLength(1);
      expect(JSON.stringify(logs)).not.toContain('hunter2');
      expect((logs[0]!.obj as Record<string, unknown>).code).toBe(ErrorCodes.SECRET_JSON_KEY);
      handle.close();
    });

    it('stops refreshing when the resolver signal aborts', async () => {
      const s = scriptedSource();
      const stop = new AbortController();
      const handle = await createSecretResolver({ ...base, sources: [s.definition], signal: stop.signal }).open({
        type: 'scripted',
        name: 'k',
        ttl: '1s',
      });
      await vi.advanceTimersByTimeAsync(1_000);
      expect(s.fetches).toBe(2);
      stop.abort();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(s.fetches).toBe(2);
      expect(handle.value()).toBe('v1');
    });

    it('retries a failed first fetch every failure_ttl (default 1m) until it succeeds, then stops', async () => {
      const s = scriptedSource();
      s.next.value = new Error('not yet');
      const logs: LogCall[] = [];
      const resolver = createSecretResolver({ ...base, sources: [s.definition], logger: recordingLogger(logs) });
      const byDefault = await resolver.open({ type: 'scripted', name: 'd' });
      const quick = await resolver.open({ type: 'scripted', name: 'q', failure_ttl: '5s' });
      expect(s.fetches).toBe(2);
      await vi.advanceTimersByTimeAsync(5_000);
      expect(s.fetches).toBe(3);
      expect(quick.available).toBe(false);
      s.next.value = 'late-value';
      await vi.advanceTimersByTimeAsync(5_000);
      expect(quick.available).toBe(true);
      expect(quick.value()).toBe('late-value');
      expect(byDefault.available).toBe(false);
      await vi.advanceTimersByTimeAsync(50_000);
      expect(byDefault.value()).toBe('late-value');
      const fetches = s.fetches;
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(s.fetches).toBe(fetches);
      expect(logs.some((l) => l.level === 'info' && l.msg?.includes('available now') === true)).toBe(true);
      expect(JSON.stringify(logs)).not.toContain('late-value');
      byDefault.close();
      quick.close();
    });

    it('does not refresh without a ttl or with ttl 0', async () => {
      const s = scriptedSource();
      const resolver = createSecretResolver({ ...base, sources: [s.definition] });
      await resolver.open({ type: 'scripted', name: 'a' });
      await resolver.open({ type: 'scripted', name: 'b', ttl: '0' });
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(s.fetches).toBe(2);
    });

    it('unrefs its timer so it never keeps the process alive', async () => {
      const s = scriptedSource();
      const spy = vi.spyOn(globalThis, 'setTimeout');
      const handle = await createSecretResolver({ ...base, sources: [s.definition] }).open({ type: 'scripted', name: 'a', ttl: '1h' });
      const timer = spy.mock.results.at(-1)?.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      handle.close();
      spy.mockRestore();
    });
  });
});
