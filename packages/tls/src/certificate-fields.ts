/** Field values shared by the CA and leaf certificates this package writes. */
import { randomBytes } from 'node:crypto';
import { x509 } from './x509-library.js';

/** The OID of the commonName attribute. */
const COMMON_NAME_OID = '2.5.4.3';

/** A random serial number: 16 octets, positive with a non-zero first octet (RFC 5280: at most 20). */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** A subject name holding only `commonName`, as a UTF8String (no DN-string escaping involved). */
export function subjectWithCommonName(commonName: string): x509.Name {
  return new x509.Name([{ [COMMON_NAME_OID]: [{ utf8String: commonName }] }]);
}
