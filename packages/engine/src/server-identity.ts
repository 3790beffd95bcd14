import { X509Certificate } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { checkServerIdentity as nodeCheckServerIdentity, type PeerCertificate } from 'node:tls';

/**
 * Checks that `cert` was issued for `host`, as `tls.checkServerIdentity` does, with one
 * difference: an IPv6 literal is matched against the certificate's IP-address SANs by OpenSSL
 * (`X509Certificate.checkIP`). Node 22.23 and the 24.x releases from 24.17 until the fix
 * reject every IPv6 literal there (nodejs/node#64144: the host goes through `domainToASCII`,
 * which empties it), so an upstream at `https://[2001:db8::1]/` would fail verification; on a
 * fixed Node both agree.
 * Pass it as `checkServerIdentity` to `tls.connect` (or an undici connector).
 */
export function checkServerIdentity(host: string, cert: PeerCertificate): Error | undefined {
  if (isIPv6(host) && cert.raw !== undefined && new X509Certificate(cert.raw).checkIP(host) !== undefined) return undefined;
  return nodeCheckServerIdentity(host, cert);
}
