import { describe, expect, it } from 'vitest';
import { ProxyError } from '@proxy/core';
import { listenError, parseListenAddress } from './listen.js';

describe('parseListenAddress', () => {
  it.each([
    [':53', { host: undefined, port: 53 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:5353', { host: '::1', port: 5353 }],
    ['localhost:5353', { host: 'localhost', port: 5353 }],
  ])('parses %s', (value, expected) => {
    expect(parseListenAddress(value)).toEqual(expected);
  });

  it.each(['53', '127.0.0.1', ':99999', '[not-ipv6]:53', '::1:53'])('rejects %s naming dns.listen', (value) => {
    expect(() => parseListenAddress(value)).toThrow(expect.objectContaining({ code: 'PROXY_ERR_CONFIG_INVALID', message: expect.stringContaining('dns.listen') }));
  });
});

/** The error Node raises when binding a port below 1024 without CAP_NET_BIND_SERVICE. */
function eacces(): NodeJS.ErrnoException {
  return Object.assign(new Error('bind EACCES 0.0.0.0:53'), { code: 'EACCES', errno: -13, syscall: 'bind' });
}

describe('listenError', () => {
  // The tests run as root, which may bind port 53, so the EACCES a non-root user gets is injected.
  it('turns EACCES into a ProxyError that names the setcap fix and the high-port alternative', () => {
    const cause = eacces();
    const error = listenError(cause, ':53');
    expect(error).toBeInstanceOf(ProxyError);
    expect(error).toMatchObject({ code: 'PROXY_ERR_CONFIG_INVALID', reason: 'listen_permission_denied', cause });
    const message = (error as ProxyError).message;
    expect(message).toContain('dns.listen ":53"');
    expect(message).toContain('setcap cap_net_bind_service=+ep $(which node)');
    expect(message).toMatch(/port >= 1024/);
  });

  it('turns EADDRINUSE into a ProxyError naming dns.listen', () => {
    const error = listenError(Object.assign(new Error('bind EADDRINUSE'), { code: 'EADDRINUSE' }), '127.0.0.1:5353');
    expect(error).toMatchObject({ code: 'PROXY_ERR_CONFIG_INVALID', reason: 'listen_address_in_use' });
    expect((error as Error).message).toContain('dns.listen "127.0.0.1:5353"');
  });

  it('returns other errors unchanged', () => {
    const other = Object.assign(new Error('getaddrinfo ENOTFOUND nohost'), { code: 'ENOTFOUND' });
    expect(listenError(other, 'nohost:53')).toBe(other);
  });
});
