import { ConfigError, ErrorCodes } from '@proxy/core';
import { runTransform, validateTransformConfig } from '@proxy/core/testing';
import { describe, expect, it } from 'vitest';
import { awsJwtTransform } from '../src/index.js';

/** The issues `create()` reports (wrapped by the pipeline in `PROXY_ERR_TRANSFORM_CREATE_FAILED`). */
async function createIssues(config: unknown): Promise<{ path: string; message: string }[]> {
  const err = await runTransform(awsJwtTransform, config).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: ErrorCodes.TRANSFORM_CREATE_FAILED });
  const cause = (err as Error).cause;
  expect(cause).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toMatch(/^transforms\[0\] \(aws_jwt\): /);
  return (cause as ConfigError).issues.map(({ path, message }) => ({ path, message }));
}

describe('aws_jwt config: schema', () => {
  it('accepts an empty config (dynamic audience) and fills the defaults', () => {
    const config = {};
    expect(validateTransformConfig(awsJwtTransform, config)).toEqual([]);
  });

  it.each([
    [{ audience: [''] }, 'audience[0]', /pattern/],
    [{ audience: ['   '] }, 'audience[0]', /pattern/],
    [{ audience: ['https://ok.test', '\t'] }, 'audience[1]', /pattern/],
    [{ audience: [] }, 'audience', /fewer than 1 items/],
    [{ audience: 'https://x.test' }, 'audience', /array/],
    [{ signing_algorithm: 'HS256' }, 'signing_algorithm', /pattern/],
    [{ signing_algorithm: 'RS2566' }, 'signing_algorithm', /pattern/],
    [{ duration: 'an hour' }, 'duration', /duration/],
    [{ refresh_skew: '5' }, 'refresh_skew', /duration/],
    [{ max_cached_audiences: 0 }, 'max_cached_audiences', />= 1/],
    [{ allowed_audiences: [' '] }, 'allowed_audiences[0]', /pattern/],
    [{ audience: ['https://x.test'], allowed_audiences: ['*.x.test'] }, 'allowed_audiences', /must NOT be valid/],
    [{ audiences: ['https://x.test'] }, 'audiences', /known field/],
  ])('refuses %j at %s', (config, path, message) => {
    const issues = validateTransformConfig(awsJwtTransform, config);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.find((i) => i.path === path)?.message).toMatch(message);
  });

  it('takes the signing algorithm in any case', () => {
    for (const signing_algorithm of ['RS256', 'rs256', 'Es384']) {
      expect(validateTransformConfig(awsJwtTransform, { signing_algorithm })).toEqual([]);
    }
  });
});

describe('aws_jwt config: rules checked when the transform is created', () => {
  it('refuses refresh_skew equal to or longer than duration, naming refresh_skew', async () => {
    expect(await createIssues({ duration: '10m', refresh_skew: '10m' })).toEqual([
      { path: 'refresh_skew', message: 'must be less than duration (got 10m, duration 10m)' },
    ]);
    expect(await createIssues({ duration: '2m', refresh_skew: '5m' })).toEqual([
      { path: 'refresh_skew', message: 'must be less than duration (got 5m, duration 2m)' },
    ]);
  });

  it('refuses a zero refresh_skew', async () => {
    expect(await createIssues({ refresh_skew: '0s' })).toEqual([{ path: 'refresh_skew', message: 'must be greater than 0 (got 0s)' }]);
  });

  it('refuses a duration outside 60s..1h or with a fraction of a second, naming duration', async () => {
    expect(await createIssues({ duration: '59s', refresh_skew: '10s' })).toEqual([
      { path: 'duration', message: 'must be between 60s and 1h (got 59s)' },
    ]);
    expect(await createIssues({ duration: '1h1s' })).toEqual([{ path: 'duration', message: 'must be between 60s and 1h (got 1h1s)' }]);
    expect(await createIssues({ duration: '90500ms', refresh_skew: '10s' })).toEqual([
      { path: 'duration', message: 'must be a whole number of seconds (got 90500ms)' },
    ]);
  });

  it('refuses an allowed_audiences entry that is not a host glob or scheme://host-glob', async () => {
    expect(await createIssues({ allowed_audiences: ['*.ok.test', 'ftp://x.test', 'https://bad host'] })).toEqual([
      { path: 'allowed_audiences[1]', message: 'scheme must be http or https (got "ftp://x.test")' },
      { path: 'allowed_audiences[2]', message: 'must be a host glob or scheme://host-glob (got "https://bad host")' },
    ]);
  });

  it('accepts the bounds: 60s with a 59s skew, and 1h', async () => {
    // Validation passes; the request then fails only because no STS is configured here.
    process.env.AWS_REGION = 'us-east-1';
    process.env.AWS_ENDPOINT_URL_STS = 'http://127.0.0.1:9';
    process.env.AWS_ACCESS_KEY_ID = 'AKIDBOUNDS';
    process.env.AWS_SECRET_ACCESS_KEY = 'bounds';
    for (const config of [{ duration: '60s', refresh_skew: '59s' }, { duration: '1h' }]) {
      const result = await runTransform(awsJwtTransform, { ...config, rules: [{ host: 'never.test' }] });
      expect(result.decision.action).toBe('continue');
    }
  });
});
