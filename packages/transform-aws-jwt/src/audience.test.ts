import { describe, expect, it } from 'vitest';
import { compileAudiencePolicy, dynamicAudience, normalizeAudiences } from './audience.js';

describe('normalizeAudiences', () => {
  it('sorts and de-duplicates, so equal sets are equal lists', () => {
    expect(normalizeAudiences(['b', 'a', 'b'])).toEqual(['a', 'b']);
    expect(normalizeAudiences(['a', 'b'])).toEqual(['a', 'b']);
  });

  it('keeps case: audiences are compared exactly', () => {
    expect(normalizeAudiences(['B', 'b'])).toEqual(['B', 'b']);
  });
});

describe('dynamicAudience', () => {
  it.each([
    ['https', 'API.Example.COM', 'https://api.example.com'],
    ['https', 'api.example.com.', 'https://api.example.com'],
    ['http', '10.0.0.1', 'http://10.0.0.1'],
    ['https', '2001:DB8::1', 'https://[2001:db8::1]'],
    ['https', '[::1]', 'https://[::1]'],
  ] as const)('%s + %s -> %s', (scheme, host, audience) => {
    expect(dynamicAudience({ scheme, host })).toBe(audience);
  });
});

describe('compileAudiencePolicy', () => {
  const allowed = compileAudiencePolicy(['*.example.com', 'https://api.partner.test', 'http://[::1]']);

  it('matches host globs on any scheme', () => {
    expect(allowed({ scheme: 'http', host: 'example.com' })).toBe(true);
    expect(allowed({ scheme: 'https', host: 'a.b.example.com' })).toBe(true);
    expect(allowed({ scheme: 'https', host: 'example.com.evil.test' })).toBe(false);
  });

  it('matches scheme://host-glob on that scheme only', () => {
    expect(allowed({ scheme: 'https', host: 'API.partner.test' })).toBe(true);
    expect(allowed({ scheme: 'http', host: 'api.partner.test' })).toBe(false);
    expect(allowed({ scheme: 'http', host: '::1' })).toBe(true);
    expect(allowed({ scheme: 'https', host: '::1' })).toBe(false);
  });

  it('names every bad entry', () => {
    expect(() => compileAudiencePolicy(['ok.test', 'a b', 'gopher://x'])).toThrow(
      expect.objectContaining({
        issues: [
          { path: 'allowed_audiences[1]', message: 'must be a host glob or scheme://host-glob (got "a b")' },
          { path: 'allowed_audiences[2]', message: 'scheme must be http or https (got "gopher://x")' },
        ],
      }),
    );
  });
});
