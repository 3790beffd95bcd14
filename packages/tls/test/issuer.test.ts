import { X509Certificate } from 'node:crypto';
import { ErrorCodes } from '@proxy/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { LeafCertificateIssuer, certificateAuthorityFromPem, generateCertificateAuthority, type CertificateAuthority } from '../src/index.js';
import { x509 } from '../src/x509-library.js';

const HOUR_MS = 60 * 60 * 1000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

let ca: CertificateAuthority;
let caCertificate: X509Certificate;
beforeAll(async () => {
  ca = await certificateAuthorityFromPem(await generateCertificateAuthority({ commonName: 'issuer test CA' }));
  caCertificate = new X509Certificate(ca.certificatePem);
});

/** A clock the test moves by hand, starting now (rounded to the second, as certificate times are). */
function manualClock(): { now: () => number; advance: (ms: number) => void; readonly start: number } {
  const start = Math.floor(Date.now() / 1000) * 1000;
  let current = start;
  return { now: () => current, advance: (ms) => (current += ms), start };
}

describe('LeafCertificateIssuer: the leaf', () => {
  it('is a server certificate for a DNS name, signed by the CA, valid from an hour ago for 72 hours', async () => {
    const clock = manualClock();
    const issuer = new LeafCertificateIssuer(ca, { now: clock.now });
    const leaf = await issuer.leafFor('api.example.test');
    const certificate = new X509Certificate(leaf.certPem);

    expect(certificate.subject).toBe('CN=api.example.test');
    expect(certificate.subjectAltName).toBe('DNS:api.example.test');
    expect(certificate.checkHost('api.example.test')).toBe('api.example.test');
    expect(certificate.checkHost('other.example.test')).toBeUndefined();
    expect(certificate.issuer).toBe(caCertificate.subject);
    expect(certificate.checkIssued(caCertificate)).toBe(true);
    expect(certificate.verify(caCertificate.publicKey)).toBe(true);
    expect(certificate.ca).toBe(false);
    expect(certificate.keyUsage).toEqual([SERVER_AUTH]);
    expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(certificate.validFromDate.getTime()).toBe(clock.start - HOUR_MS);
    expect(certificate.validToDate.getTime()).toBe(clock.start + 72 * HOUR_MS);
    expect(leaf.notAfter.getTime()).toBe(clock.start + 72 * HOUR_MS);
    expect(leaf.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);

    const parsed = new x509.X509Certificate(leaf.certPem);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: false, critical: true });
    expect(parsed.getExtension(x509.KeyUsagesExtension)).toMatchObject({ usages: x509.KeyUsageFlags.digitalSignature, critical: true });
    const caKeyId = new x509.X509Certificate(ca.certificatePem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    expect(parsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(caKeyId);
    expect(parsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
  });

  it('names IPv4 and IPv6 literals in an IP SAN', async () => {
    const issuer = new LeafCertificateIssuer(ca);
    const v4 = new X509Certificate((await issuer.leafFor('192.0.2.7')).certPem);
    expect(v4.subjectAltName).toBe('IP Address:192.0.2.7');
    expect(v4.checkIP('192.0.2.7')).toBe('192.0.2.7');
    expect(v4.checkIP('192.0.2.8')).toBeUndefined();
    const v6 = new X509Certificate((await issuer.leafFor('[2001:DB8::1]')).certPem);
    expect(v6.checkIP('2001:db8::1')).toBe('2001:db8::1');
    expect(v6.checkIP('2001:db8::2')).toBeUndefined();
  });

  it('puts a name too long for a CN in a critical SAN only', async () => {
    const name = `${'a'.repeat(60)}.example.test`;
    const leaf = await new LeafCertificateIssuer(ca).leafFor(name);
    const certificate = new X509Certificate(leaf.certPem);
    expect(certificate.subject).toBeUndefined();
    expect(certificate.checkHost(name)).toBe(name);
    expect(new x509.X509Certificate(leaf.certPem).getExtension(x509.SubjectAlternativeNameExtension)?.critical).toBe(true);
  });

  it('never outlives the CA', async () => {
    const shortCa = await certificateAuthorityFromPem(await generateCertificateAuthority({ days: 1 }));
    const leaf = await new LeafCertificateIssuer(shortCa, { lifetimeHours: 72 }).leafFor('example.test');
    expect(leaf.notAfter.getTime()).toBe(shortCa.notAfter.getTime());
    expect(new X509Certificate(leaf.certPem).validToDate.getTime()).toBe(shortCa.notAfter.getTime());
  });

  it('gives every leaf its own key and serial', async () => {
    const issuer = new LeafCertificateIssuer(ca);
    const a = await issuer.leafFor('a.example.test');
    const b = await issuer.leafFor('b.example.test');
    expect(a.keyPem).not.toBe(b.keyPem);
    expect(new X509Certificate(a.certPem).serialNumber).not.toBe(new X509Certificate(b.certPem).serialNumber);
  });
});

describe('LeafCertificateIssuer: the cache', () => {
  it('shares one entry between spellings of a name', async () => {
    const issuer = new LeafCertificateIssuer(ca);
    const first = await issuer.leafFor('Example.TEST.');
    expect(await issuer.leafFor('example.test')).toEqual(first);
    expect(await issuer.leafFor('[::1]')).toEqual(await issuer.leafFor('0:0::1'));
    expect(await issuer.secureContextFor('EXAMPLE.test')).toBe(await issuer.secureContextFor('example.test'));
    expect(issuer.cachedCount).toBe(2);
  });

  it('mints once for concurrent requests for one name', async () => {
    const issuer = new LeafCertificateIssuer(ca);
    const contexts = await Promise.all(Array.from({ length: 25 }, (_, i) => issuer.secureContextFor(i % 2 === 0 ? 'busy.example.test' : 'BUSY.example.test.')));
    for (const context of contexts) expect(context).toBe(contexts[0]);
    const leaves = await Promise.all(Array.from({ length: 10 }, () => issuer.leafFor('other.example.test')));
    expect(new Set(leaves.map((leaf) => leaf.certPem)).size).toBe(1);
    expect(issuer.cachedCount).toBe(2);
  });

  it('evicts the least recently used name beyond cacheSize', async () => {
    const issuer = new LeafCertificateIssuer(ca, { cacheSize: 2 });
    const a = await issuer.leafFor('a.example.test');
    const b = await issuer.leafFor('b.example.test');
    await issuer.leafFor('a.example.test');
    await issuer.leafFor('c.example.test');
    expect(issuer.cachedCount).toBe(2);
    expect((await issuer.leafFor('a.example.test')).certPem).toBe(a.certPem);
    expect((await issuer.leafFor('b.example.test')).certPem).not.toBe(b.certPem);
    expect(issuer.cachedCount).toBe(2);
  });

  it('keeps nothing with cacheSize 0, but still answers', async () => {
    const issuer = new LeafCertificateIssuer(ca, { cacheSize: 0 });
    const first = await issuer.leafFor('a.example.test');
    expect((await issuer.leafFor('a.example.test')).certPem).not.toBe(first.certPem);
    expect(issuer.cachedCount).toBe(0);
  });

  it('re-mints a cached leaf once less than an hour of a 72-hour lifetime remains', async () => {
    const clock = manualClock();
    const issuer = new LeafCertificateIssuer(ca, { now: clock.now });
    const first = await issuer.leafFor('renew.example.test');
    clock.advance(71 * HOUR_MS - 1);
    expect((await issuer.leafFor('renew.example.test')).certPem).toBe(first.certPem);
    clock.advance(1);
    const renewed = await issuer.leafFor('renew.example.test');
    expect(renewed.certPem).not.toBe(first.certPem);
    expect(renewed.notAfter.getTime()).toBe(clock.now() + 72 * HOUR_MS);
    expect(issuer.cachedCount).toBe(1);
  });

  it('re-mints a short-lived leaf once less than 10% of its lifetime remains', async () => {
    const clock = manualClock();
    const issuer = new LeafCertificateIssuer(ca, { lifetimeHours: 2, now: clock.now });
    const first = await issuer.secureContextFor('short.example.test');
    clock.advance(108 * 60 * 1000 - 1); // 1 h 48 min: 12 min (10%) remain, less one millisecond
    expect(await issuer.secureContextFor('short.example.test')).toBe(first);
    clock.advance(1);
    expect(await issuer.secureContextFor('short.example.test')).not.toBe(first);
  });

  it('refuses invalid names', async () => {
    const issuer = new LeafCertificateIssuer(ca);
    await expect(issuer.secureContextFor('*.example.test')).rejects.toMatchObject({ code: ErrorCodes.TLS_SERVER_NAME_INVALID });
    await expect(issuer.leafFor('')).rejects.toMatchObject({ code: ErrorCodes.TLS_SERVER_NAME_INVALID });
    expect(issuer.cachedCount).toBe(0);
  });

  it('refuses to mint past the CA expiry, and caches no failure', async () => {
    const clock = manualClock();
    const issuer = new LeafCertificateIssuer(ca, { now: clock.now });
    clock.advance(ca.notAfter.getTime() - clock.start);
    await expect(issuer.leafFor('late.example.test')).rejects.toMatchObject({ code: ErrorCodes.CA_EXPIRED });
    expect(issuer.cachedCount).toBe(0);
    clock.advance(-HOUR_MS);
    const leaf = await issuer.leafFor('late.example.test');
    expect(leaf.notAfter.getTime()).toBe(ca.notAfter.getTime());
  });

  it('refuses nonsensical options', () => {
    expect(() => new LeafCertificateIssuer(ca, { lifetimeHours: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
    expect(() => new LeafCertificateIssuer(ca, { cacheSize: -1 })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
    expect(() => new LeafCertificateIssuer(ca, { cacheSize: 1.5 })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
  });
});
