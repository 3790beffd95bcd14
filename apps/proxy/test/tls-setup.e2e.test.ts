import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess } from './support/proxy-process.js';

// The CLI that makes interception usable (`proxy ca generate`, `proxy init`) and the CA checks
// that stop startup before anything listens.

let dir: string;
let pki: TestPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'proxy-tls-setup-'));
  pki = await createTestPki({ names: ['api.example.test'] });
});

afterAll(async () => {
  await pki?.remove();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

describe('proxy ca generate', () => {
  it('writes ca.crt (0644) and ca.key (0600) and prints how to trust the CA', async () => {
    const out = join(dir, 'generated');
    const r = await runCli(['ca', 'generate', '--out', out, '--name', 'Acme Egress CA', '--days', '30']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const certFile = join(out, 'ca.crt');
    const keyFile = join(out, 'ca.key');
    expect(await mode(certFile)).toBe(0o644);
    expect(await mode(keyFile)).toBe(0o600);
    for (const hint of ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', certFile]) expect(r.stdout).toContain(hint);
    expect(r.stdout).not.toContain('PRIVATE KEY');

    const cert = new X509Certificate(await readFile(certFile));
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=Acme Egress CA');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(keyFile)))).toBe(true);
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThan(32);
  });

  it('refuses to overwrite an existing CA and leaves it untouched', async () => {
    const out = join(dir, 'twice');
    expect((await runCli(['ca', 'generate', '--out', out])).code).toBe(0);
    const [cert, key] = await Promise.all([readFile(join(out, 'ca.crt'), 'utf8'), readFile(join(out, 'ca.key'), 'utf8')]);
    const again = await runCli(['ca', 'generate', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[PROXY_ERR_CA_EXISTS]');
    expect(await readFile(join(out, 'ca.crt'), 'utf8')).toBe(cert);
    expect(await readFile(join(out, 'ca.key'), 'utf8')).toBe(key);
  });

  it.each([
    ['ec', 'ec'],
    ['rsa', 'rsa'],
    ['ed25519', 'ed25519'],
  ])('--alg %s makes a %s CA key', async (alg, keyType) => {
    const out = join(dir, `alg-${alg}`);
    const r = await runCli(['ca', 'generate', '--out', out, '--alg', alg]);
    expect(r.code).toBe(0);
    const key = createPrivateKey(await readFile(join(out, 'ca.key')));
    expect(key.asymmetricKeyType).toBe(keyType);
    expect(new X509Certificate(await readFile(join(out, 'ca.crt'))).checkPrivateKey(key)).toBe(true);
  });

  it('rejects an unknown --alg with a usage error', async () => {
    const r = await runCli(['ca', 'generate', '--out', join(dir, 'bad-alg'), '--alg', 'dsa']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--alg');
  });
});

describe('proxy init', () => {
  it('writes a CA and a config that validates and starts, with the given allowlist', async () => {
    const project = join(dir, 'init');
    const r = await runCli(['init', '--dir', project, '--allow', 'api.example.test,*.example.org']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('NODE_EXTRA_CA_CERTS');
    const configFile = join(project, 'proxy.yaml');
    expect(await mode(join(project, 'ca.key'))).toBe(0o600);
    expect(new X509Certificate(await readFile(join(project, 'ca.crt'))).ca).toBe(true);

    const validated = await runCli(['validate', '--config', configFile]);
    expect(validated.stderr).toBe('');
    expect(validated.code).toBe(0);

    // Start it as written, on ephemeral ports (the starter's fixed ports may be taken here).
    const written = await readFile(configFile, 'utf8');
    const onEphemeralPorts = written.replace(/"127\.0\.0\.1:\d+"/g, '"127.0.0.1:0"');
    expect(onEphemeralPorts).not.toBe(written);
    const proxy = await startProxyProcess(onEphemeralPorts, { dir: project });
    try {
      const listeners = proxy.lines().filter((l) => l.msg === 'listening').map((l) => l.listener);
      expect(listeners).toEqual(expect.arrayContaining(['http', 'https', 'tunnel']));
      // The allowlist holds the hosts given: others are refused when the tunnel opens.
      expect(written).toMatch(/- "api\.example\.test"\n\s+- "\*\.example\.org"/);
      const refused = await curl(['-o', '/dev/null', '-w', '%{http_connect}', '-x', `http://127.0.0.1:${proxy.port('tunnel')}`, 'https://not-listed.example.net/']);
      expect(refused.stdout).toBe('403');
    } finally {
      await proxy.stop();
    }
  });

  it('refuses to overwrite an existing config', async () => {
    const project = join(dir, 'init-twice');
    expect((await runCli(['init', '--dir', project])).code).toBe(0);
    const config = await readFile(join(project, 'proxy.yaml'), 'utf8');
    const again = await runCli(['init', '--dir', project, '--allow', 'x.example.test']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(join(project, 'proxy.yaml'));
    expect(await readFile(join(project, 'proxy.yaml'), 'utf8')).toBe(config);
  });
});

describe('CA checks at startup', () => {
  /** Writes a mitm config naming these CA files and runs the proxy on it until it exits. */
  async function startWith(name: string, caCert: string, caKey: string): Promise<{ code: number; stderr: string; stdout: string }> {
    const caseDir = join(dir, `ca-check-${name}`);
    await mkdir(caseDir, { recursive: true });
    const configFile = join(caseDir, 'proxy.yaml');
    await writeFile(
      configFile,
      `proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
  tunnel_listen: "127.0.0.1:0"
tls:
  mode: mitm
  ca_cert: "${caCert}"
  ca_key: "${caKey}"
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test"]
`,
    );
    return runCli(['--config', configFile]);
  }

  /** One line on stderr naming one of `files`, with the error code; exit 1; no listener opened. */
  function expectRefusal(r: { code: number; stderr: string; stdout: string }, files: readonly string[], code: string): void {
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(files.some((file) => lines[0]!.includes(file)), lines[0]).toBe(true);
    expect(lines[0]).toContain(`[${code}]`);
    expect(r.stdout).not.toContain('"listening"');
  }

  it('refuses a certificate that is not a CA', async () => {
    expectRefusal(await startWith('not-ca', pki.certFile, pki.keyFile), [pki.certFile], 'PROXY_ERR_CA_INVALID');
  });

  it('refuses a key that does not match the certificate', async () => {
    const out = join(dir, 'mismatch-ca');
    expect((await runCli(['ca', 'generate', '--out', out])).code).toBe(0);
    // An EC P-256 key like the CA's, but another one: the error may name either file.
    const certFile = join(out, 'ca.crt');
    expectRefusal(await startWith('key-mismatch', certFile, pki.keyFile), [pki.keyFile, certFile], 'PROXY_ERR_CA_KEY_MISMATCH');
  });

  it('refuses an unreadable file', async () => {
    const missing = join(dir, 'no-such-dir', 'ca.crt');
    expectRefusal(await startWith('unreadable', missing, pki.keyFile), [missing], 'PROXY_ERR_CA_READ');
  });

  it('starts on the same config with a good CA (the control for the refusals)', async () => {
    const out = join(dir, 'good-ca');
    expect((await runCli(['ca', 'generate', '--out', out])).code).toBe(0);
    const caseDir = join(dir, 'ca-check-good');
    await mkdir(caseDir, { recursive: true });
    const proxy = await startProxyProcess(
      `proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
tls:
  mode: mitm
  ca_cert: "../good-ca/ca.crt"
  ca_key: "../good-ca/ca.key"
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test"]
`,
      { dir: caseDir },
    );
    expect(proxy.port('https')).toBeGreaterThan(0);
    await proxy.stop();
  });
});
