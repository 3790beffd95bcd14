import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { startLocalRegistry, type LocalRegistry } from './support/local-registry.js';
import { curl, startInstalledProxy } from './support/proxy-process.js';

// The packages as a user gets them: `pnpm release:pack` tarballs served by a local registry
// (with every third-party dependency, from this checkout's node_modules; nothing is fetched
// from the internet), installed with plain npm into empty folders.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const templateDir = join(root, 'examples/transform-template');
const INSTALL_TIMEOUT = 180_000;

interface Packed {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  readonly file: string;
}

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let work: string;
let registry: LocalRegistry;
let tarballs: Packed[];
let echo: EchoServer;
let appVersion: string;
/** `npm install -g --prefix` target, filled by the global install test. */
let globalPrefix: string;

/** An environment for npm that sees only the local registry and a private cache and config. */
function npmEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k) && k !== 'NODE_OPTIONS') env[k] = v;
  return {
    ...env,
    HOME: join(work, 'home'),
    npm_config_registry: registry.url,
    npm_config_userconfig: join(work, 'home', '.npmrc'),
    npm_config_globalconfig: join(work, 'home', 'npmrc-global'),
    npm_config_cache: join(work, 'npm-cache'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_loglevel: 'error',
    npm_config_prefer_offline: 'true',
    // Belt and braces: anything npm would fetch from elsewhere than the local registry goes to a
    // dead proxy and fails.
    npm_config_proxy: 'http://127.0.0.1:9',
    npm_config_https_proxy: 'http://127.0.0.1:9',
    npm_config_noproxy: '127.0.0.1',
    ...extra,
  };
}

function sh(file: string, args: readonly string[], cwd: string, env: Record<string, string> = npmEnv()): Promise<Result> {
  return new Promise((resolvePromise) => {
    execFile(file, args, { cwd, env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolvePromise({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

/** Runs a command and fails the test with its output when it exits non-zero. */
async function ok(file: string, args: readonly string[], cwd: string, env?: Record<string, string>): Promise<Result> {
  const r = await sh(file, args, cwd, env);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} (in ${cwd}) exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}\nregistry misses: ${[...registry.misses].join(', ')}`);
  return r;
}

const config = (extraTransforms = ''): string => `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
transforms:
  - name: allowlist
    config:
      rules: [{ cidr: "127.0.0.0/8", ports: [${echo.port}] }]
${extraTransforms}`;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'proxy-install-'));
  await mkdir(join(work, 'home'), { recursive: true });
  await writeFile(join(work, 'home', '.npmrc'), '');
  await writeFile(join(work, 'home', 'npmrc-global'), '');
  const out = join(work, 'tarballs');
  const packed = await sh(process.execPath, [join(root, 'tooling/scripts/release-pack.mjs'), '--out', out], root, { ...process.env } as Record<string, string>);
  if (packed.code !== 0) throw new Error(`release:pack failed:\n${packed.stderr}`);
  tarballs = JSON.parse(await readFile(join(out, 'tarballs.json'), 'utf8')) as Packed[];
  appVersion = tarballs.find((t) => t.name === '@proxy/app')!.version;
  registry = await startLocalRegistry({
    workspace: tarballs,
    // The transform template's own dev dependencies.
    extra: [
      { name: 'typescript', from: root },
      { name: '@types/node', from: root },
    ],
    workDir: join(work, 'registry'),
  });
  echo = await startEchoServer({ host: '127.0.0.1' });
}, INSTALL_TIMEOUT);

afterAll(async () => {
  await echo?.close();
  await registry?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** The fenced `sh` blocks of README.md between `<!-- install:start -->` and `<!-- install:end -->`. */
async function readmeInstallBlocks(): Promise<string[]> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const section = /<!-- install:start -->([\s\S]*?)<!-- install:end -->/.exec(readme)?.[1];
  if (section === undefined) throw new Error('README.md has no <!-- install:start --> ... <!-- install:end --> section');
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Runs a README block verbatim with bash in `dir`, `npm install -g` going to `prefix` (on PATH). */
async function runReadmeBlock(block: string, dir: string, prefix: string): Promise<Result> {
  await mkdir(prefix, { recursive: true });
  const env = npmEnv({ npm_config_prefix: prefix, PATH: `${join(prefix, 'bin')}${delimiter}${process.env.PATH ?? ''}` });
  return ok('bash', ['-euo', 'pipefail', '-c', block], dir, env);
}

describe("@proxy/app installed with plain npm, as README.md's Install section says", () => {
  it(
    'in an empty folder: the README commands (npm install, npx proxy --version, init, validate), then a real request',
    async () => {
      const blocks = await readmeInstallBlocks();
      expect(blocks).toHaveLength(2);
      const dir = join(work, 'readme-local');
      await mkdir(dir);
      const r = await runReadmeBlock(blocks[0]!, dir, join(work, 'readme-local-prefix'));
      expect(r.stdout).toContain(appVersion);
      expect(r.stdout).toContain('wrote');
      const appDir = join(dir, 'my-proxy');
      expect(existsSync(join(appDir, 'proxy.yaml'))).toBe(true);

      // One copy of @proxy/core, shared by the app and every first-party transform.
      const cores = (await ok('npm', ['ls', '@proxy/core', '--all', '--parseable'], appDir)).stdout.split('\n').filter(Boolean);
      expect(new Set(cores)).toEqual(new Set([join(appDir, 'node_modules/@proxy/core')]));

      await mkdir(join(appDir, 'etc'));
      await writeFile(join(appDir, 'etc', 'proxy.yaml'), config());
      expect((await ok('npx', ['proxy', '--version'], appDir)).stdout).toContain(appVersion);
      await ok('npx', ['proxy', 'validate', '--config', 'etc/proxy.yaml'], appDir);
      const proxy = await startInstalledProxy(join(appDir, 'node_modules/.bin/proxy'), ['--config', join(appDir, 'etc/proxy.yaml')], { dir: appDir });
      try {
        const via = ['-x', `http://127.0.0.1:${proxy.port('http')}`, '-o', '/dev/null', '-w', '%{http_code}'];
        expect((await curl([...via, `http://127.0.0.1:${echo.port}/through-the-installed-app`])).stdout).toBe('200');
        expect((await curl([...via, `http://127.0.0.1:${echo.port + 1}/not-allowed`])).stdout).toBe('403');
        const audit = await proxy.waitForAudit((a) => a.path === '/through-the-installed-app');
        expect(audit.status_code).toBe(200);
      } finally {
        await proxy.stop();
      }
    },
    INSTALL_TIMEOUT,
  );

  it(
    'globally: the README commands (npm install -g, proxy --version)',
    async () => {
      const blocks = await readmeInstallBlocks();
      globalPrefix = join(work, 'global');
      const r = await runReadmeBlock(blocks[1]!, work, globalPrefix);
      expect(r.stdout).toContain(appVersion);
      expect((await ok(join(globalPrefix, 'bin', 'proxy'), ['--version'], work)).stdout).toContain(appVersion);
      expect(existsSync(join(globalPrefix, 'bin', 'aws-outbound-jwt-proxy'))).toBe(true);
    },
    INSTALL_TIMEOUT,
  );
});

describe('the transform template (examples/transform-template)', () => {
  let pluginTarball: string;

  it(
    'installs its own dev dependencies, passes its own tests and typecheck, and packs',
    async () => {
      const copy = join(work, 'transform-template');
      await cp(templateDir, copy, { recursive: true, filter: (src) => !/[/\\](node_modules|dist)$/.test(src) && !src.endsWith('.tgz') });
      await ok('npm', ['install'], copy);
      const test = await ok('npm', ['test'], copy);
      expect(test.stdout).toMatch(/\bfail 0\b/);
      await ok('npm', ['run', 'typecheck'], copy);
      await ok('npm', ['pack', '--pack-destination', work], copy);
      const name = (await readdir(work)).find((f) => f.startsWith('proxy-transform-template-') && f.endsWith('.tgz'));
      expect(name).toBeDefined();
      pluginTarball = join(work, name!);
      const entries = (await ok('tar', ['-tzf', pluginTarball], work)).stdout;
      expect(entries).toContain('package/dist/index.js');
      expect(entries).not.toContain('package/src/');
    },
    INSTALL_TIMEOUT,
  );

  it(
    'installed next to the config file with npm, runs in the globally installed proxy on its one @proxy/core',
    async () => {
      expect(pluginTarball, 'the template was packed').toBeDefined();
      expect(globalPrefix, 'the app was installed globally').toBeDefined();
      const etc = join(work, 'etc-plugin');
      await mkdir(etc);
      await ok('npm', ['install', pluginTarball], etc);
      // npm installed the peer dependency beside the plugin: a second @proxy/core on disk, which
      // the proxy must not load.
      expect(existsSync(join(etc, 'node_modules/@proxy/core/package.json'))).toBe(true);
      await writeFile(
        join(etc, 'proxy.yaml'),
        config(`  - name: proxy-transform-template
    config:
      deny_paths: ["/denied"]
`),
      );
      await ok(join(globalPrefix, 'bin', 'proxy'), ['validate', '--config', join(etc, 'proxy.yaml')], etc);

      // Records every @proxy/core entry module the proxy process loads.
      const traceFile = join(work, 'core-loads.txt');
      const tracer = join(work, 'trace-core.mjs');
      await writeFile(
        tracer,
        `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
registerHooks({
  load(url, context, nextLoad) {
    if (/\\/@proxy\\/core\\/dist\\/index\\.js$/.test(url)) appendFileSync(${JSON.stringify(traceFile)}, url + '\\n');
    return nextLoad(url, context);
  },
});
`,
      );
      const proxy = await startInstalledProxy(join(globalPrefix, 'bin', 'proxy'), ['--config', join(etc, 'proxy.yaml')], {
        dir: etc,
        env: { NODE_OPTIONS: `--import=${pathToFileURL(tracer).href}` },
      });
      try {
        const via = ['-x', `http://127.0.0.1:${proxy.port('http')}`, '-s', '-o', '/dev/null', '-w', '%{http_code}'];
        expect((await curl([...via, `http://127.0.0.1:${echo.port}/allowed`])).stdout).toBe('200');
        // A ProxyError thrown by the plugin keeps its status: the pipeline recognised it as its own class.
        expect((await curl([...via, `http://127.0.0.1:${echo.port}/denied/x`])).stdout).toBe('451');
        const audit = await proxy.waitForAudit((a) => a.path === '/denied/x');
        expect(audit).toMatchObject({ status_code: 451, rejected_by: 'proxy-transform-template', reason: 'path_denied' });
      } finally {
        await proxy.stop();
      }
      const loaded = [...new Set((await readFile(traceFile, 'utf8')).split('\n').filter(Boolean))];
      expect(loaded).toEqual([pathToFileURL(join(globalPrefix, 'lib/node_modules/@proxy/app/node_modules/@proxy/core/dist/index.js')).href]);
    },
    INSTALL_TIMEOUT,
  );
});
