import { access, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCodes, ProxyError } from '@proxy/core';
import { generateCertificateAuthority, writeCertificateAuthority } from '@proxy/tls';
import type { CaAlgorithm } from './command-line.js';

/** How to make clients trust the interception CA, printed after one is written. */
export function trustInstructions(certFile: string): string {
  return `To let clients trust it:
  system store (Debian/Ubuntu):  cp ${certFile} /usr/local/share/ca-certificates/proxy-ca.crt && update-ca-certificates
  Node.js:                       export NODE_EXTRA_CA_CERTS=${certFile}
  OpenSSL-based tools, curl:     export SSL_CERT_FILE=${certFile}   (or curl --cacert ${certFile})
  Python requests / pip:         export REQUESTS_CA_BUNDLE=${certFile}
Keep the key private: anyone holding it can impersonate any site to those clients.
`;
}

/** `proxy ca generate`: writes ca.crt (0644) and ca.key (0600), never over existing files. */
export async function generateCa(options: { outDir: string; commonName?: string; days?: number; algorithm: CaAlgorithm }): Promise<string> {
  const ca = await generateCertificateAuthority({
    algorithm: options.algorithm,
    ...(options.commonName === undefined ? {} : { commonName: options.commonName }),
    ...(options.days === undefined ? {} : { days: options.days }),
  });
  const { certFile, keyFile } = await writeCertificateAuthority(resolve(options.outDir), ca);
  return `wrote ${certFile} (certificate) and ${keyFile} (private key, mode 0600)\n${trustInstructions(certFile)}`;
}

/** The starter config `proxy init` writes: listeners on loopback, interception with the new CA, an allowlist. */
export function starterConfig(allow: readonly string[]): string {
  const domains = allow.length === 0 ? '        []   # add the hosts your workload may reach' : allow.map((h) => `        - "${h}"`).join('\n');
  return `# Written by \`proxy init\`. Run it with: proxy --config proxy.yaml
# Paths are relative to this file.
proxy:
  http_listen: "127.0.0.1:8080"      # HTTP_PROXY=http://127.0.0.1:8080
  https_listen: "127.0.0.1:8443"     # TLS interception for clients sent here by DNS
  tunnel_listen: "127.0.0.1:1080"    # HTTPS_PROXY=http://127.0.0.1:1080 or ALL_PROXY=socks5h://127.0.0.1:1080

tls:
  mode: mitm
  ca_cert: "ca.crt"
  ca_key: "ca.key"

transforms:
  # Default deny: only these hosts are reachable, on ports 80 and 443 (TLS) unless an entry
  # names a port (api.example.com:8443); everything else gets 403.
  - name: allowlist
    config:
      domains:
${domains}

log:
  level: info
`;
}

/** `proxy init`: a CA and a starter config in `dir`; refuses to overwrite anything. */
export async function initProject(options: { dir: string; allow: readonly string[] }): Promise<string> {
  const dir = resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const configFile = join(dir, 'proxy.yaml');
  const exists = await access(configFile).then(
    () => true,
    () => false,
  );
  if (exists) throw new ProxyError(ErrorCodes.CONFIG_EXISTS, `${configFile} already exists; not overwriting it`);
  const ca = await generateCertificateAuthority({ algorithm: 'ec' });
  const { certFile } = await writeCertificateAuthority(dir, ca);
  await writeFile(configFile, starterConfig(options.allow), { flag: 'wx', mode: 0o644 });
  return `wrote ${configFile} and a new CA (${certFile})
Start the proxy:  proxy --config ${configFile}
${trustInstructions(certFile)}`;
}
