import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess } from './support/proxy-process.js';

// A third-party transform is installed next to the config file (node_modules) and named by its
// package name; these tests lay out such a directory the way an operator would.
const examplePackage = resolve(dirname(fileURLToPath(import.meta.url)), '../../../examples/third-party-transform');

let echo: EchoServer;
let dir: string;

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  dir = await mkdtemp(join(tmpdir(), 'proxy-third-party-'));
  await mkdir(join(dir, 'node_modules', '@acme'), { recursive: true });
  await symlink(examplePackage, join(dir, 'node_modules', '@acme', 'proxy-transform-example'), 'dir');
});

afterAll(async () => {
  await echo?.close();
  await rm(dir, { recursive: true, force: true });
});

const config = (name: string, extra = ''): string => `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
transforms:
  - name: allowlist
    config:
      rules: [{ cidr: "127.0.0.0/8", ports: [${echo.port}] }]
  - name: "${name}"
    config:
      require_headers: ["X-Team"]${extra}
`;

/** Writes a fake package into the operator directory's node_modules. */
async function fakePackage(name: string, source: string): Promise<void> {
  const pkgDir = join(dir, 'node_modules', name);
  await mkdir(pkgDir, { recursive: true });
  await writeFile(join(pkgDir, 'package.json'), JSON.stringify({ name, version: '1.0.0', type: 'module', exports: './index.js' }));
  await writeFile(join(pkgDir, 'index.js'), source);
}

describe('a third-party transform named by package name', () => {
  it('is loaded from the config directory and runs in the pipeline', async () => {
    const proxy = await startProxyProcess(config('@acme/proxy-transform-example'), { dir });
    try {
      const via = ['-x', `http://127.0.0.1:${proxy.port('http')}`, '-o', '/dev/null', '-w', '%{http_code}'];
      expect((await curl([...via, `http://127.0.0.1:${echo.port}/no-team`])).stdout).toBe('403');
      expect((await curl([...via, '-H', 'X-Team: infra', `http://127.0.0.1:${echo.port}/team`])).stdout).toBe('200');
      const audit = await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/no-team');
      expect(audit.rejected_by).toBe('@acme/proxy-transform-example');
    } finally {
      await proxy.stop();
    }
  });

  it('validates its config block against its own schema', async () => {
    await writeFile(join(dir, 'bad-config.yaml'), config('@acme/proxy-transform-example', '\n      colour: blue'));
    const r = await runCli(['validate', '--config', join(dir, 'bad-config.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad-config\.yaml:12:\d+: transforms\[1\]\.config\.colour/);
  });

  it('fails startup with PROXY_ERR_TRANSFORM_NOT_FOUND when the package is not installed', async () => {
    await writeFile(join(dir, 'missing.yaml'), config('@acme/not-installed'));
    const r = await runCli(['--config', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PROXY_ERR_TRANSFORM_NOT_FOUND');
    expect(r.stderr).toMatch(/missing\.yaml:9:\d+: transforms\[1\]\.name/);
    expect(r.stdout).not.toContain('listening');
  });

  it('fails startup with PROXY_ERR_TRANSFORM_INVALID_EXPORT when the package exports no definition', async () => {
    await fakePackage('@acme/not-a-transform', 'export default { hello: "world" };\n');
    await writeFile(join(dir, 'invalid.yaml'), config('@acme/not-a-transform'));
    const r = await runCli(['--config', join(dir, 'invalid.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PROXY_ERR_TRANSFORM_INVALID_EXPORT');
  });

  it('fails startup with PROXY_ERR_TRANSFORM_NAME_MISMATCH when the definition has another name', async () => {
    await fakePackage(
      '@acme/wrong-name',
      'export default { name: "@acme/someone-else", schema: { type: "object" }, create() { return {}; } };\n',
    );
    await writeFile(join(dir, 'mismatch.yaml'), config('@acme/wrong-name'));
    const r = await runCli(['validate', '--config', join(dir, 'mismatch.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PROXY_ERR_TRANSFORM_NAME_MISMATCH');
  });

  it("runs on the app's own @proxy/core when npm put another copy beside it: a thrown ProxyError keeps its status", async () => {
    // What `npm install <plugin>` in the config directory leaves: the plugin and its peer
    // @proxy/core, a copy the app must not load (its ProxyError would be another class).
    const own = await mkdtemp(join(tmpdir(), 'proxy-third-party-core-'));
    try {
      const core = join(own, 'node_modules', '@proxy', 'core');
      await mkdir(core, { recursive: true });
      const coreDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../packages/core');
      await cp(join(coreDir, 'package.json'), join(core, 'package.json'));
      await cp(join(coreDir, 'dist'), join(core, 'dist'), { recursive: true });
      const plugin = join(own, 'node_modules', '@acme', 'throws-451');
      await mkdir(plugin, { recursive: true });
      await writeFile(
        join(plugin, 'package.json'),
        JSON.stringify({ name: '@acme/throws-451', version: '1.0.0', type: 'module', exports: './index.js', peerDependencies: { '@proxy/core': '*' } }),
      );
      await writeFile(
        join(plugin, 'index.js'),
        `import { ErrorCodes, ProxyError } from '@proxy/core';
export default {
  name: '@acme/throws-451',
  schema: { type: 'object' },
  create() {
    return {
      onRequest(request) {
        if (request.path === '/legal') throw new ProxyError(ErrorCodes.TRANSFORM_FAILED, 'unavailable', { status: 451, reason: 'legal_hold' });
        return { action: 'continue' };
      },
    };
  },
};
`,
      );
      const yaml = `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
transforms:
  - name: allowlist
    config:
      rules: [{ cidr: "127.0.0.0/8", ports: [${echo.port}] }]
  - name: "@acme/throws-451"
`;
      const proxy = await startProxyProcess(yaml, { dir: own });
      try {
        const via = ['-x', `http://127.0.0.1:${proxy.port('http')}`, '-o', '/dev/null', '-w', '%{http_code}'];
        expect((await curl([...via, `http://127.0.0.1:${echo.port}/legal`])).stdout).toBe('451');
        expect((await curl([...via, `http://127.0.0.1:${echo.port}/fine`])).stdout).toBe('200');
        const audit = await proxy.waitForAudit((a) => a.path === '/legal');
        expect(audit).toMatchObject({ status_code: 451, rejected_by: '@acme/throws-451', reason: 'legal_hold' });
      } finally {
        await proxy.stop();
      }
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});
