import { describe, expect, it } from 'vitest';
import { CidrSet, isIpLiteral } from './cidr.js';
import { ErrorCodes, ProxyError } from './errors.js';

describe('CidrSet', () => {
  const deny = CidrSet.parse(['169.254.169.254/32', '127.0.0.0/8', '::1/128', 'fd00:ec2::254/128', '10.0.0.0/8']);

  it.each([
    ['127.0.0.1', '127.0.0.0/8'],
    ['127.255.0.9', '127.0.0.0/8'],
    ['169.254.169.254', '169.254.169.254/32'],
    ['10.1.2.3', '10.0.0.0/8'],
    ['::1', '::1/128'],
    ['[::1]', '::1/128'],
    ['fd00:ec2::254', 'fd00:ec2::254/128'],
    ['FD00:EC2:0:0:0:0:0:254', 'fd00:ec2::254/128'],
    ['::ffff:127.0.0.1', '127.0.0.0/8'],
    ['::ffff:7f00:1', '127.0.0.0/8'],
    ['[::ffff:169.254.169.254]', '169.254.169.254/32'],
    ['0:0:0:0:0:ffff:a01:203', '10.0.0.0/8'],
  ])('%s is in %s', (address, range) => {
    expect(deny.contains(address)).toBe(true);
    expect(deny.match(address)).toBe(range);
  });

  it.each(['8.8.8.8', '169.254.169.253', '::2', '2001:db8::1', '::ffff:8.8.8.8', 'example.com', '', '127.1', '0x7f.0.0.1', '1.2.3.4.5'])(
    '%s is not in the set',
    (address) => {
      expect(deny.contains(address)).toBe(false);
      expect(deny.match(address)).toBeUndefined();
    },
  );

  it('matches an IPv4-mapped IPv6 range as the IPv4 range it maps', () => {
    const set = CidrSet.parse(['::ffff:10.0.0.0/104']);
    expect(set.contains('10.9.9.9')).toBe(true);
    expect(set.contains('::ffff:10.9.9.9')).toBe(true);
    expect(set.contains('11.0.0.1')).toBe(false);
  });

  it('does not match IPv4 addresses against plain IPv6 ranges', () => {
    expect(CidrSet.parse(['::/0']).contains('1.2.3.4')).toBe(false);
    expect(CidrSet.parse(['::/0']).contains('2001:db8::1')).toBe(true);
    expect(CidrSet.parse(['0.0.0.0/0']).contains('2001:db8::1')).toBe(false);
  });

  it('returns the first matching range as written', () => {
    expect(CidrSet.parse(['10.0.0.0/8', '10.1.0.0/16']).match('10.1.0.1')).toBe('10.0.0.0/8');
  });

  it.each(['10.0.0.0', '10.0.0.0/33', '10.0.0.0/x', 'nope/8', '::1/129', '::ffff:1.2.3.4/64', '10.0.0.0/-1', ''])(
    'rejects %j naming the entry',
    (bad) => {
      let caught: unknown;
      try {
        CidrSet.parse(['10.0.0.0/8', bad]);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ProxyError);
      expect((caught as ProxyError).code).toBe(ErrorCodes.CONFIG_INVALID);
      expect((caught as ProxyError).message).toContain(`"${bad}"`);
    },
  );
});

describe('isIpLiteral', () => {
  it.each(['1.2.3.4', '::1', '[::1]', '[2001:db8::1]', '::ffff:127.0.0.1', 'fe80::1%eth0'])('%s is an IP literal', (h) => {
    expect(isIpLiteral(h)).toBe(true);
  });
  it.each(['example.com', '1.2.3', '127.1', '01.2.3.4', '256.1.1.1', '[1.2.3.4', '', 'localhost', '1.2.3.4.example.com'])(
    '%s is not an IP literal',
    (h) => {
      expect(isIpLiteral(h)).toBe(false);
    },
  );
});
