import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes, ProxyError } from './errors.js';
import { SecretRedactor } from './redactor.js';
import {
  createSecretResolver,
  envSource,
  isSecretSourceDefinition,
  SECRET_FETCH_TIMEOUT_MS,
  type SecretHandle,
  type SecretResolver,
  type SecretSourceConfig,
  type SecretSourceDefinition,
} from './secrets.js';
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

/** Opens a secret and waits for its first fetch to settle. */
async function opened(resolver: SecretResolver, source: SecretSourceConfig): Promise<SecretHandle> {
  const handle = await resolver.open(source);
  await handle.ready();
  return handle;
}

/** A backend whose fetches wait until the test settles them; it records the signal each got. */
function gatedSource(): { definition: SecretSourceDefinition; calls: { signal: AbortSignal; resolve: (v: string) => void; reject: (e: Error) => void }[] } {
  const calls: { signal: AbortSignal; resolve: (v: string) => void; reject: (e: Error) => void }[] = [];
  return {
    calls,
    definition: {
      type: 'gated',
      properties: { name: { type: 'string' } },
      required: ['name'],
      label: (c) => `gated:${String(c.name)}`,
      // Ignores its signal on purpose: the resolver must bound the fetch anyway.
      create: () => ({ fetch: (signal) => new Promise<string>((resolve, reject) => calls.push({ signal, resolve, reject })) }),
    },
  };
}
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
  const context = { logger: recordingLogger([]), http: noHttp, env: { SET: 'value-1', EMPTY: '' }, baseDir: '/', redactor: new SecretRedactor() };

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

describe('isSecretSourceDefinition', () => {
  it('accepts a definition and refuses other shapes', () => {
    expect(isSecretSourceDefinition(envSource)).toBe(true);
    expect(isSecretSourceDefinition({ ...envSource, type: '' })).toBe(false);
    expect(isSecretSourceDefinition({ ...envSource, create: undefined })).toBe(false);
    expect(isSecretSourceDefinition({ name: 'allowlist', schema: {}, create: () => undefined })).toBe(false);
    expect(isSecretSourceDefinition(null)).toBe(false);
  });
});

describe('createSecretResolver', () => {
  const controller = new AbortController();
  const base = { sources: [envSource], logger: recordingLogger([]), clock, http: noHttp, signal: controller.signal };

  it('opens an env secret', async () => {
    const handle = await opened(createSecretResolver({ ...base, env: { TOKEN: 'tok-123' } }), { type: 'env', var: 'TOKEN' });
    expect(handle.label).toBe('TOKEN');
    expect(handle.value()).toBe('tok-123');
    handle.close();
  });

  it('reads process.env by default', async () => {
    process.env.PROXY_CORE_TEST_SECRET = 'from-process';
    try {
      const handle = await opened(createSecretResolver(base), { type: 'env', var: 'PROXY_CORE_TEST_SECRET' });
      expect(handle.value()).toBe('from-process');
    } finally {
      delete process.env.PROXY_CORE_TEST_SECRET;
    }
  });

  it('opens an unavailable handle, without failing, when the first fetch fails', async () => {
    const logs: LogCall[] = [];
    const resolver = createSecretResolver({ ...base, env: {}, logger: recordingLogger(logs) });
    const handle = await opened(resolver, { type: 'env', var: 'NOPE' });
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
    const handle = await opened(createSecretResolver({ ...base, sources: [s.definition] }), { type: 'scripted', name: 'a' });
    const err = thrown(() => handle.value());
    expect(err.code).toBe(ErrorCodes.SECRET_UNAVAILABLE);
    expect(err.message).toContain('scripted:a');
    expect(err.message).toContain('connection refused');
    handle.close();
  });

  it('registers every fetched value with the redactor', async () => {
    const redactor = new SecretRedactor();
    const handle = await opened(createSecretResolver({ ...base, env: { TOKEN: 'tok-123456' }, redactor }), { type: 'env', var: 'TOKEN' });
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
      expect((await opened(resolver, { type: 'env', var: 'JSON_SECRET', json_key: key })).value()).toBe(value);
    });

    it.each([
      ['JSON_SECRET', 'missing'],
      ['JSON_SECRET', 'nothing'],
      ['JSON_SECRET', 'toString'],
      ['PLAIN', 'client_id'],
      ['ARRAY', '0'],
    ])('%s json_key %s fails with SECRET_JSON_KEY without the value', async (name, key) => {
      const handle = await opened(resolver, { type: 'env', var: name, json_key: key });
      expect(handle.available).toBe(false);
      const err = thrown(() => handle.value());
      handle.close();
      expect(err.code).toBe(ErrorCodes.SECRET_JSON_KEY);
      expect(err.message).toContain(name);
      expect(err.message).not.toContain('hunter2');
      expect(String(err.cause ?? '')).not.toContain('hunter2');
    });
  });

  describe('first fetch', () => {
    it('is started by open, which returns at once with a pending handle', async () => {
      const g = gatedSource();
      const resolver = createSecretResolver({ ...base, sources: [g.definition] });
      const handles = await Promise.all(['a', 'b', 'c'].map((name) => resolver.open({ type: 'gated', name })));
      // Every first fetch is in flight at once: N slow sources do not add up.
      expect(g.calls).toHaveLength(3);
      const [a, b, c] = handles as [SecretHandle, SecretHandle, SecretHandle];
      expect(a.pending).toBe(true);
      expect(a.available).toBe(false);
      const early = thrown(() => a.value());
      expect(early.code).toBe(ErrorCodes.SECRET_UNAVAILABLE);
      expect(early.message).toContain('gated:a');
      g.calls[0]!.resolve('value-of-a');
      g.calls[1]!.reject(new Error('backend says no'));
      await Promise.all([a.ready(), b.ready()]);
      expect(a).toMatchObject({ pending: false, available: true });
      expect(a.value()).toBe('value-of-a');
      expect(b).toMatchObject({ pending: false, available: false });
      expect(thrown(() => b.value()).message).toContain('backend says no');
      expect(c.pending).toBe(true);
      expect(resolver.handles()).toHaveLength(3);
      for (const h of handles) h.close();
    });

    it('never rejects ready(), and gives every waiter the same settlement', async () => {
      const g = gatedSource();
      const handle = await createSecretResolver({ ...base, sources: [g.definition] }).open({ type: 'gated', name: 'x' });
      const waiters = [handle.ready(), handle.ready()];
      g.calls[0]!.reject(new Error('down'));
      await expect(Promise.all(waiters)).resolves.toEqual([undefined, undefined]);
      expect(handle.available).toBe(false);
      handle.close();
    });

    it('passes a signal tied to the secret, not to whoever waits, and aborts it on close', async () => {
      const g = gatedSource();
      const logs: LogCall[] = [];
      const handle = await createSecretResolver({ ...base, sources: [g.definition], logger: recordingLogger(logs) }).open({ type: 'gated', name: 'x' });
      const waiter = handle.ready();
      expect(g.calls[0]!.signal.aborted).toBe(false);
      handle.close();
      expect(g.calls[0]!.signal.aborted).toBe(true);
      await waiter;
      expect(handle).toMatchObject({ pending: false, available: false });
      // Closing is no failure worth a warning.
      expect(logs).toEqual([]);
    });

    it('gives up on a fetch after 30s even when the backend ignores its signal', async () => {
      vi.useFakeTimers();
      try {
        const g = gatedSource();
        const logs: LogCall[] = [];
        const handle = await createSecretResolver({ ...base, sources: [g.definition], logger: recordingLogger(logs) }).open({
          type: 'gated',
          name: 'slow',
          failure_ttl: '10s',
        });
        let settled = false;
        void handle.ready().then(() => (settled = true));
        await vi.advanceTimersByTimeAsync(SECRET_FETCH_TIMEOUT_MS - 1);
        expect(settled).toBe(false);
        await vi.advanceTimersByTimeAsync(1);
        expect(settled).toBe(true);
        expect(g.calls[0]!.signal.aborted).toBe(true);
        expect(thrown(() => handle.value()).message).toMatch(/gated:slow .*timed out after 30s/);
        expect(logs.map((l) => l.level)).toEqual(['warn']);
        // A late answer to the abandoned fetch changes nothing; the retry comes after failure_ttl.
        g.calls[0]!.resolve('too-late-value');
        await vi.advanceTimersByTimeAsync(9_999);
        expect(handle.available).toBe(false);
        expect(g.calls).toHaveLength(1);
        await vi.advanceTimersByTimeAsync(1);
        expect(g.calls).toHaveLength(2);
        g.calls[1]!.resolve('in-time-value');
        await vi.advanceTimersByTimeAsync(0);
        expect(handle.value()).toBe('in-time-value');
        handle.close();
      } finally {
        vi.useRealTimers();
      }
    });

    it('gives backends the resolver environment and a redactor for their own credentials', async () => {
      const redactor = new SecretRedactor();
      const definition: SecretSourceDefinition = {
        type: 'token-backed',
        properties: {},
        required: [],
        label: () => 'token-backed',
        create: (_config, context) => ({
          fetch: () => {
            const token = context.env.BACKEND_TOKEN ?? '';
            context.redactor.add(token, 'BACKEND_TOKEN');
            return Promise.resolve(`fetched-with-${token.length}-chars`);
          },
        }),
      };
      const handle = await opened(createSecretResolver({ ...base, sources: [definition], env: { BACKEND_TOKEN: 'backend-token-123' }, redactor }), {
        type: 'token-backed',
      });
      expect(handle.value()).toBe('fetched-with-17-chars');
      expect(redactor.redact('backend-token-123 fetched-with-17-chars')).toBe('[redacted:BACKEND_TOKEN] [redacted:token-backed]');
      handle.close();
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
      const handle = await opened(createSecretResolver({ ...base, sources: [s.definition], logger: recordingLogger(logs) }), {
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
      const handle = await opened(createSecretResolver({ ...base, sources: [s.definition], logger: recordingLogger(logs) }), {
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
      const handle = await opened(createSecretResolver({ ...base, sources: [s.definition], signal: stop.signal }), {
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
      const byDefault = await opened(resolver, { type: 'scripted', name: 'd' });
      const quick = await opened(resolver, { type: 'scripted', name: 'q', failure_ttl: '5s' });
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
      await opened(resolver, { type: 'scripted', name: 'a' });
      await opened(resolver, { type: 'scripted', name: 'b', ttl: '0' });
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(s.fetches).toBe(2);
    });

    it('unrefs its timer so it never keeps the process alive', async () => {
      const s = scriptedSource();
      const spy = vi.spyOn(globalThis, 'setTimeout');
      const handle = await opened(createSecretResolver({ ...base, sources: [s.definition] }), { type: 'scripted', name: 'a', ttl: '1h' });
      const timer = spy.mock.results.at(-1)?.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      handle.close();
      spy.mockRestore();
    });
  });
});
