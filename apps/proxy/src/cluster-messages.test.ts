import { ConfigError, ErrorCodes, ProxyError } from '@proxy/core';
import { describe, expect, it } from 'vitest';
import { deserializeError, messageType, serializeError } from './cluster-messages.js';

describe('errors across the IPC channel', () => {
  it('rebuild a ConfigError with its issues and code, so the management API answers 422 as in one process', () => {
    const issues = [{ file: 'proxy.yaml', line: 3, column: 1, path: 'bogus', message: 'unknown field "bogus"' }];
    const rebuilt = deserializeError(JSON.parse(JSON.stringify(serializeError(new ConfigError(issues)))));
    expect(rebuilt).toBeInstanceOf(ConfigError);
    expect((rebuilt as ConfigError).issues).toEqual(issues);
    expect((rebuilt as ConfigError).code).toBe(ErrorCodes.CONFIG_INVALID);
  });

  it('rebuild a ProxyError with its code, and any other error by name and message', () => {
    const proxy = deserializeError(serializeError(new ProxyError(ErrorCodes.CA_READ, 'cannot read the CA')));
    expect(proxy).toBeInstanceOf(ProxyError);
    expect(proxy).toMatchObject({ code: ErrorCodes.CA_READ, message: 'cannot read the CA' });
    expect(deserializeError(serializeError(new TypeError('boom')))).toMatchObject({ name: 'TypeError', message: 'boom' });
    expect(deserializeError(serializeError('text'))).toMatchObject({ name: 'string', message: 'text' });
  });
});

describe('messageType', () => {
  it('names only our messages', () => {
    expect(messageType({ type: 'proxy:ready' })).toBe('proxy:ready');
    expect(messageType({ cmd: 'NODE_CLUSTER' })).toBeUndefined();
    expect(messageType('proxy:ready')).toBeUndefined();
  });
});
