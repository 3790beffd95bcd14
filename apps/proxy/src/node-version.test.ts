import { describe, expect, it } from 'vitest';
import { isSupportedNodeVersion, MINIMUM_NODE_VERSION, unsupportedNodeMessage } from './node-version.js';

describe('isSupportedNodeVersion', () => {
  it.each(['22.19.0', 'v22.19.0', 'v22.20.1', 'v22.100.0', 'v23.0.0', 'v23.11.1', 'v24.0.0', 'v24.21.0', 'v25.2.1', 'v100.0.0', 'v22.19.0-nightly20250101abc'])('accepts %s', (version) => {
    expect(isSupportedNodeVersion(version)).toBe(true);
  });

  it.each(['22.18.0', 'v22.18.9', 'v22.9.0', 'v22.1.0', 'v21.99.0', 'v20.20.2', 'v18.20.8', 'v2.19.0', 'v0.22.19', '', 'node', 'v22'])('refuses %s', (version) => {
    expect(isSupportedNodeVersion(version)).toBe(false);
  });

  it('puts the boundary at 22.19, the version the README and package.json engines name', () => {
    expect(MINIMUM_NODE_VERSION).toEqual([22, 19]);
  });
});

describe('unsupportedNodeMessage', () => {
  it('names the command, the version needed and the one found, on one line', () => {
    const message = unsupportedNodeMessage('proxy', 'v20.20.2');
    expect(message).toMatch(/^proxy: Node\.js >= 22\.19 is required \(found v20\.20\.2\); install Node\.js 22 or 24 LTS/);
    expect(message).toContain('./nodew');
    expect(message).not.toContain('\n');
    expect(unsupportedNodeMessage('aws-outbound-jwt-proxy', 'v22.18.0')).toMatch(/^aws-outbound-jwt-proxy: .*\(found v22\.18\.0\)/);
  });

  it('is undefined for a supported version', () => {
    expect(unsupportedNodeMessage('proxy', 'v22.19.0')).toBeUndefined();
    expect(unsupportedNodeMessage('proxy', 'v24.1.0')).toBeUndefined();
  });
});
