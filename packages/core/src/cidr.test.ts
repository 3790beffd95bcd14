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

describe('CidrSet.matchWithEmbedded', () => {
  const deny = CidrSet.parse(['169.254.0.0/16', '127.0.0.0/8', '::1/128', '0.0.0.0/8', '::/128', 'fd00:ec2::254/128']);

  it.each([
    // The address itself: no embedding reported.
    ['169.254.169.254', '169.254.0.0/16', undefined],
    ['fd00:ec2::254', 'fd00:ec2::254/128', undefined],
    ['::1', '::1/128', undefined],
    ['::', '::/128', undefined],
    // IPv4-mapped (::ffff:0:0/96), in both spellings.
    ['::ffff:169.254.169.254', '169.254.0.0/16', ['169.254.169.254', 'ipv4-mapped']],
    ['[::ffff:7f00:1]', '127.0.0.0/8', ['127.0.0.1', 'ipv4-mapped']],
    // IPv4-compatible (::/96).
    ['::169.254.169.254', '169.254.0.0/16', ['169.254.169.254', 'ipv4-compatible']],
    ['::7f00:1', '127.0.0.0/8', ['127.0.0.1', 'ipv4-compatible']],
    ['[::a9fe:a9fe]', '169.254.0.0/16', ['169.254.169.254', 'ipv4-compatible']],
    // NAT64 well-known prefix (64:ff9b::/96).
    ['64:ff9b::a9fe:a9fe', '169.254.0.0/16', ['169.254.169.254', 'nat64']],
    ['64:ff9b::169.254.170.2', '169.254.0.0/16', ['169.254.170.2', 'nat64']],
    ['64:FF9B:0:0:0:0:7F00:1', '127.0.0.0/8', ['127.0.0.1', 'nat64']],
    // 6to4 (2002::/16): bits 16 to 47, whatever follows.
    ['2002:a9fe:a9fe::1', '169.254.0.0/16', ['169.254.169.254', '6to4']],
    ['2002:7f00:1:ffff:1:2:3:4', '127.0.0.0/8', ['127.0.0.1', '6to4']],
    // Teredo (2001::/32): server in bits 32 to 63, client inverted in the low 32 bits.
    ['2001:0:a9fe:a9fe::1', '169.254.0.0/16', ['169.254.169.254', 'teredo-server']],
    ['2001:0:4136:e378:8000:63bf:5601:5601', '169.254.0.0/16', ['169.254.169.254', 'teredo-client']],
    ['2001:0:4136:e378::80ff:fffe', '127.0.0.0/8', ['127.0.0.1', 'teredo-client']],
  ])('%s is denied by %s', (address, range, embedded) => {
    const match = deny.matchWithEmbedded(address);
    expect(match).toEqual(embedded === undefined ? { range } : { range, embedded: { address: embedded[0], embedding: embedded[1] } });
  });

  it.each([
    '8.8.8.8',
    '2001:db8::1',
    // Embedding an allowed IPv4 address.
    '::ffff:8.8.8.8',
    '::808:808',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
    // Near the embedding prefixes, but outside them.
    '64:ff9c::a9fe:a9fe',
    '2003:a9fe:a9fe::1',
    '2001:1:a9fe:a9fe::1',
    '1::a9fe:a9fe',
    'example.com',
    '',
  ])('%s is not denied', (address) => {
    expect(deny.matchWithEmbedded(address)).toBeUndefined();
  });

  it('denies only what the list denies: NAT64 of a public address passes a list of 169.254/16', () => {
    const imdsOnly = CidrSet.parse(['169.254.0.0/16']);
    expect(imdsOnly.matchWithEmbedded('64:ff9b::808:808')).toBeUndefined();
    expect(imdsOnly.matchWithEmbedded('64:ff9b::7f00:1')).toBeUndefined();
    expect(imdsOnly.matchWithEmbedded('64:ff9b::a9fe:a9fe')).toMatchObject({ range: '169.254.0.0/16' });
  });

  it('reads ::a.b.c.d as the IPv4-compatible address the system dials, not as IPv4-mapped', () => {
    const loopback = CidrSet.parse(['127.0.0.0/8']);
    expect(loopback.match('::127.0.0.1')).toBeUndefined();
    expect(loopback.match('::ffff:127.0.0.1')).toBe('127.0.0.0/8');
    expect(CidrSet.parse(['::/96']).match('::127.0.0.1')).toBe('::/96');
    expect(isIpLiteral('::ffff:127.0.0.1%eth0')).toBe(true);
    expect(isIpLiteral('::ffff:127.1')).toBe(false);
    expect(isIpLiteral('::ffff:0x7f.0.0.1')).toBe(false);
  });

  it('prefers a range holding the IPv6 address itself over one holding what it embeds', () => {
    const set = CidrSet.parse(['169.254.0.0/16', '64:ff9b::/96']);
    expect(set.matchWithEmbedded('64:ff9b::a9fe:a9fe')).toEqual({ range: '64:ff9b::/96' });
  });

  it('leaves the strict match alone: rules never see through an embedding', () => {
    expect(deny.match('64:ff9b::a9fe:a9fe')).toBeUndefined();
    expect(deny.match('2002:a9fe:a9fe::1')).toBeUndefined();
    expect(deny.match('::7f00:1')).toBeUndefined();
    expect(CidrSet.parse(['169.254.0.0/16']).contains('64:ff9b::a9fe:a9fe')).toBe(false);
  });
});

describe('CidrSet.containsRange', () => {
  const set = CidrSet.parse(['10.0.0.0/8', '172.16.0.0/13', '172.24.0.0/13', 'fc00::/7']);

  it.each([
    ['10.0.0.0/8', true],
    ['10.1.0.0/16', true],
    ['::ffff:10.0.0.0/104', true],
    ['fd00::/8', true],
    ['fc00::/7', true],
    // Two halves cover it together, but no single range holds it.
    ['172.16.0.0/12', false],
    ['192.168.0.0/16', false],
    ['0.0.0.0/0', false],
    ['::/0', false],
  ])('%s: %s', (cidr, expected) => {
    expect(set.containsRange(cidr)).toBe(expected);
  });

  it('tells a range over every address of a family', () => {
    expect(CidrSet.parse(['0.0.0.0/0']).containsRange('0.0.0.0/0')).toBe(true);
    expect(CidrSet.parse(['::ffff:0.0.0.0/96']).containsRange('0.0.0.0/0')).toBe(true);
    expect(CidrSet.parse(['::/0']).containsRange('::/0')).toBe(true);
    expect(CidrSet.parse(['::/0']).containsRange('0.0.0.0/0')).toBe(false);
    expect(CidrSet.parse(['0.0.0.0/1']).containsRange('0.0.0.0/0')).toBe(false);
  });

  it('rejects a malformed range', () => {
    expect(() => set.containsRange('10.0.0.0/33')).toThrow(ProxyError);
  });
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
