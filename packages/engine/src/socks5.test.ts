import { describe, expect, it } from 'vitest';
import { ErrorCodes, ProxyError } from '@proxy/core';
import { parseGreeting, parseRequest, socksReply, socksReplyForFailure, SocksReply } from './socks5.js';

const unreachable = (code: string): ProxyError =>
  new ProxyError(ErrorCodes.UPSTREAM_UNREACHABLE, 'x', { status: 502, reason: 'upstream_unreachable', cause: Object.assign(new Error(code), { code }) });

describe('SOCKS5 messages', () => {
  it('reads a greeting only once it is complete, and refuses other versions at once', () => {
    const greeting = Buffer.from([5, 2, 0, 2]);
    for (let cut = 0; cut < greeting.length; cut++) expect(parseGreeting(greeting.subarray(0, cut))).toEqual({ done: false });
    expect(parseGreeting(greeting)).toEqual({ done: true, value: { methods: [0, 2] }, consumed: 4 });
    expect(parseGreeting(Buffer.from([4]))).toEqual({ done: false, problem: 'not_socks5' });
    expect(parseGreeting(Buffer.from([5, 0]))).toEqual({ done: false, problem: 'no_methods' });
  });

  it('reads CONNECT requests for each address type', () => {
    const domain = Buffer.from([5, 1, 0, 3, 11, ...Buffer.from('example.com'), 0x01, 0xbb, 0xff]);
    expect(parseRequest(domain.subarray(0, 10))).toEqual({ done: false });
    expect(parseRequest(domain)).toEqual({ done: true, value: { kind: 'connect', host: 'example.com', port: 443 }, consumed: domain.length - 1 });
    expect(parseRequest(Buffer.from([5, 1, 0, 1, 10, 0, 0, 5, 0, 80]))).toMatchObject({ value: { host: '10.0.0.5', port: 80 } });
    const v6 = Buffer.from([5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, ...Array<number>(11).fill(0), 1, 0x1f, 0x90]);
    expect(parseRequest(v6)).toMatchObject({ value: { host: '2001:db8:0:0:0:0:0:1', port: 8080 } });
  });

  it('reports unsupported commands and address types as values to answer', () => {
    expect(parseRequest(Buffer.from([5, 2, 0, 1]))).toMatchObject({ done: true, value: { kind: 'unsupported_command', command: 2 } });
    expect(parseRequest(Buffer.from([5, 1, 0, 9]))).toMatchObject({ done: true, value: { kind: 'unsupported_address_type', addressType: 9 } });
  });

  it('encodes replies with an IPv4 or IPv6 bound address', () => {
    expect([...socksReply(SocksReply.NOT_ALLOWED_BY_RULESET)]).toEqual([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect([...socksReply(0, { address: '127.0.0.1', port: 40_000 })]).toEqual([5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40]);
    const v6 = socksReply(0, { address: '::ffff:127.0.0.1', port: 1 });
    expect([...v6.subarray(0, 4)]).toEqual([5, 0, 0, 4]);
    expect([...v6.subarray(4, 20)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    expect([...socksReply(0, { address: 'fe80::1:2', port: 2 }).subarray(4, 20)]).toEqual([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
  });

  it('maps upstream failures to reply codes', () => {
    expect(socksReplyForFailure(new ProxyError(ErrorCodes.UPSTREAM_DENIED, 'x', { status: 403, reason: 'upstream_denied' }))).toBe(0x02);
    expect(socksReplyForFailure(new ProxyError(ErrorCodes.UPSTREAM_RESOLVE, 'x', { status: 502, reason: 'upstream_resolve_failed' }))).toBe(0x04);
    expect(socksReplyForFailure(unreachable('ECONNREFUSED'))).toBe(0x05);
    expect(socksReplyForFailure(unreachable('ENETUNREACH'))).toBe(0x03);
    expect(socksReplyForFailure(unreachable('ETIMEDOUT'))).toBe(0x04);
    expect(socksReplyForFailure(new Error('boom'))).toBe(0x01);
  });
});
