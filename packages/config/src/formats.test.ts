import { createSchemaValidator } from '@proxy/core';
import { describe, expect, it } from 'vitest';
import { addConfigFormats, describeFormatProblem } from './formats.js';

const ajv = createSchemaValidator();
addConfigFormats(ajv);
const accepts = (format: string, value: string): boolean => ajv.validate({ type: 'string', format }, value);

describe('config formats', () => {
  it.each([
    ['listen-address', [':8080', '127.0.0.1:8080', '[::1]:8080', '0.0.0.0:0', 'localhost:65535'], ['8080', '::1:8080', '[::1', ':65536', ':http', '[10.0.0.1]:80', 'bad host:80']],
    ['host-port', ['api.internal', 'api.internal:8443', '10.0.0.5:80', '[fd00::1]:443', '[fd00::1]'], ['fd00::1', 'https://api.internal', 'api.internal/v1', ':443', 'api.internal:0', 'a..b']],
    ['resolver-address', ['8.8.8.8', '8.8.8.8:53', '2001:4860:4860::8888', '[2001:4860:4860::8888]:53'], ['dns.google', '8.8.8.8:0', '8.8.8.8:dns']],
    ['positive-duration', ['30s', '1h30m', '250ms'], ['0', '0s', '5x', '']],
    ['header-name', ['X-Upstream-Host', 'Host'], ['X Upstream', '', 'a:b']],
    ['url-path', ['/metrics', '/'], ['metrics', '/a b']],
  ] as const)('%s', (format, good, bad) => {
    for (const value of good) expect(accepts(format, value), value).toBe(true);
    for (const value of bad) expect(accepts(format, value), value).toBe(false);
  });

  it('explains each problem', () => {
    expect(describeFormatProblem('listen-address', '[10.0.0.1]:80')).toBe(
      '"[10.0.0.1]:80" is not a listen address: "10.0.0.1" in brackets is not an IPv6 address (expected [host]:port, e.g. ":8080", "127.0.0.1:8080", "[::1]:8080")',
    );
    expect(describeFormatProblem('listen-address', ':http')).toMatch(/^":http" is not a listen address: port "http" is not a number/);
    expect(describeFormatProblem('resolver-address', '8.8.8.8:0')).toBe('"8.8.8.8:0" is not a resolver address: port 0 is out of range (1-65535)');
    expect(describeFormatProblem('duration', '5x')).toBe('"5x" is not a duration (use e.g. 30s, 5m, 1h)');
    expect(describeFormatProblem('uuid', 'x')).toBe('"x" is not a valid uuid');
    expect(describeFormatProblem('duration', 5)).toBe('must be a duration');
  });
});
