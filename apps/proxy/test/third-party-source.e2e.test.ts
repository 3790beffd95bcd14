import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess } from './support/proxy-process.js';

// A third-party secret source is installed next to the config file (node_modules) and named by
// its package name as a source `type`; these tests lay out such a directory as an operator would.
const examplePackage = resolve(dirname(fileURLToPath(import.meta.url)), '../../../examples/third-party-source');
const SECRET = 'command-source-secret-4a5b';

let echo: EchoServer;
let dir: string;
const written: string[] = [];

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  dir = await mkdtemp(join(tmpdir(), 'proxy-third-party-source-'));
  await mkdir(join(dir, 'node_modules', '@acme'), { recursive: true });
  await symlink(examplePackage, join(dir, 'node_modules', '@acme', 'proxy-source-command'), 'dir');
});

afterAll(async () => {
  await echo?.close();
  await rm(dir, { recursive: true, force: true });
});

const config = (type: string, fields: string): string => `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
transforms:
  - name: allowlist
    config:
      rules: [{ cidr: "127.0.0.0/8", ports: [${echo.port}] }]
  - name: secrets
    config:
      secrets:
        - source:
            type: "${type}"
${fields}
          inject: { header: "X-Secret" }
          rules: [{ host: "127.0.0.1" }]
`;

/** Writes a fake package into the operator directory's node_modules. */
async function fakePackage(name: string, source: string): Promise<void> {
  const pkgDir = join(dir, 'node_modules', name);
  await mkdir(pkgDir, { recursive: true });
  await writeFile(join(pkgDir, 'package.json'), JSON.stringify({ name, version: '1.0.0', type: 'module', exports: './index.js' }));
  await writeFile(join(pkgDir, 'index.js'), source);
}

const commandFields = `            command: ["sh", "-c", "printf %s \\"$COMMAND_SECRET\\""]\n            ttl: 10m`;

describe('a third-party secret source named by package name', () => {
  it('is loaded from the config directory, validated, and serves its secret', async () => {
    await writeFile(join(dir, 'ok.yaml'), config('@acme/proxy-source-command', commandFields));
    const valid = await runCli(['validate', '--config', join(dir, 'ok.yaml')], { PATH: process.env.PATH ?? '' });
    written.push(valid.stdout, valid.stderr);
    expect(valid.code).toBe(0);
    const proxy = await startProxyProcess(config('@acme/proxy-source-command', commandFields), { dir, env: { COMMAND_SECRET: SECRET } });
    try {
      const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, `http://127.0.0.1:${echo.port}/x`]);
      expect((JSON.parse(r.stdout) as { headers: Record<string, string> }).headers['x-secret']).toBe(SECRET);
      const audit = await proxy.waitForAudit((a) => a.path === '/x');
      expect(audit.request_transforms).toContainEqual(
        expect.objectContaining({ name: 'secrets', annotations: { injected: [{ secret: 'sh -c printf %s "$COMMAND_SECRET"', locations: ['header:X-Secret'] }] } }),
      );
    } finally {
      await proxy.stop();
      written.push(proxy.stdout(), proxy.stderr());
    }
  });

  it('is checked by validate --check-secrets', async () => {
    const r = await runCli(['validate', '--config', join(dir, 'ok.yaml'), '--check-secrets'], { PATH: process.env.PATH ?? '', COMMAND_SECRET: SECRET });
    written.push(r.stdout, r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/secrets\[0\]\.source: secret sh -c .* \(@acme\/proxy-source-command\): available/);
  });

  it('has its fields checked against its own schema', async () => {
    await writeFile(join(dir, 'bad.yaml'), config('@acme/proxy-source-command', '            command: []\n            shell: true'));
    const r = await runCli(['validate', '--config', join(dir, 'bad.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: transforms\[1\]\.config\.secrets\[0\]\.source\.command/);
    expect(r.stderr).toMatch(/transforms\[1\]\.config\.secrets\[0\]\.source\.shell: unknown field "shell"/);
  });

  it('fails with PROXY_ERR_SECRET_SOURCE_NOT_FOUND at the type when the package is not installed', async () => {
    await writeFile(join(dir, 'missing.yaml'), config('@acme/proxy-source-missing', '            path: x'));
    const r = await runCli(['--config', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PROXY_ERR_SECRET_SOURCE_NOT_FOUND');
    expect(r.stderr).toMatch(/missing\.yaml:13:\d+: transforms\[1\]\.config\.secrets\[0\]\.source\.type: secret source package "@acme\/proxy-source-missing" is not installed/);
    expect(r.stdout).not.toContain('listening');
  });

  it('fails with PROXY_ERR_SECRET_SOURCE_INVALID_EXPORT or _TYPE_MISMATCH for a package that exports no matching definition', async () => {
    await fakePackage('@acme/not-a-source', 'export default { name: "x", schema: {}, create() {} };\n');
    await fakePackage(
      '@acme/wrong-type',
      'export default { type: "vault", properties: {}, required: [], label: () => "x", create: () => ({ fetch: async () => "v" }) };\n',
    );
    await writeFile(join(dir, 'invalid.yaml'), config('@acme/not-a-source', ''));
    await writeFile(join(dir, 'mismatch.yaml'), config('@acme/wrong-type', ''));
    const invalid = await runCli(['validate', '--config', join(dir, 'invalid.yaml')]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('PROXY_ERR_SECRET_SOURCE_INVALID_EXPORT');
    const mismatch = await runCli(['validate', '--config', join(dir, 'mismatch.yaml')]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('PROXY_ERR_SECRET_SOURCE_TYPE_MISMATCH');
  });

  it('never showed the secret in anything the proxy wrote', () => {
    expect(written.join('\n')).not.toContain(SECRET);
  });
});
