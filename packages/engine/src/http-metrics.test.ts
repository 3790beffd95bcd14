import { describe, expect, it } from 'vitest';
import { methodAttribute, upstreamAttributes } from './http-metrics.js';

describe('methodAttribute', () => {
  it('keeps the nine standard methods and folds every other to _OTHER', () => {
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']) expect(methodAttribute(m)).toBe(m);
    for (const m of ['PURGE', 'PROPFIND', 'get', '']) expect(methodAttribute(m)).toBe('_OTHER');
  });
});

describe('upstreamAttributes', () => {
  it('omits the port when it is the scheme default', () => {
    expect(upstreamAttributes({ scheme: 'https', host: 'api.example.com', port: 443 })).toEqual({ 'server.address': 'api.example.com' });
    expect(upstreamAttributes({ scheme: 'http', host: 'api.example.com', port: 80 })).toEqual({ 'server.address': 'api.example.com' });
  });

  it('keeps a port that is not the scheme default', () => {
    expect(upstreamAttributes({ scheme: 'https', host: '::1', port: 80 })).toEqual({ 'server.address': '::1', 'server.port': 80 });
    expect(upstreamAttributes({ scheme: 'http', host: 'h', port: 8080 })).toEqual({ 'server.address': 'h', 'server.port': 8080 });
  });

  it('adds error.type and token.result only when they are known', () => {
    expect(upstreamAttributes({ scheme: 'http', host: 'h', port: 80, errorType: 'timeout', tokenResult: 'ok' })).toEqual({
      'server.address': 'h',
      'error.type': 'timeout',
      'token.result': 'ok',
    });
  });
});
