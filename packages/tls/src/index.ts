/**
 * @proxy/tls: the interception CA (load, check, generate, write) and the leaf certificates
 * minted with it for every server name a client connects to.
 */
export { certificateAuthorityFromPem, loadCertificateAuthority } from './authority.js';
export type { CertificateAuthority, CertificateAuthorityFiles } from './authority.js';
export { CA_CERT_FILE_NAME, CA_KEY_FILE_NAME, writeCertificateAuthority } from './ca-files.js';
export { generateCertificateAuthority } from './generate.js';
export type { CaKeyAlgorithm, GenerateCaOptions, GeneratedCa } from './generate.js';
export { LeafCertificateIssuer } from './issuer.js';
export type { LeafCertificateSource, LeafIssuerOptions } from './issuer.js';
export { normalizeServerName } from './server-name.js';
export type { ServerName } from './server-name.js';
export type { SigningAlgorithm } from './signing-key.js';
