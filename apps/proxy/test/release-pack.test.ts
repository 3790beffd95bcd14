import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTarball } from '../../../tooling/scripts/release-pack.mjs';

// `pnpm release:pack` (tooling/scripts/release-pack.mjs) packs every package a user may install;
// these tests check what lands in the tarballs, package by package.
const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const script = join(root, 'tooling/scripts/release-pack.mjs');

interface Packed {
  readonly name: string;
  readonly version: string;
  readonly file: string;
}

let out: string;
let tarballs: Packed[];

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'proxy-release-pack-'));
  await run(process.execPath, [script, '--out', out], { cwd: root });
  tarballs = JSON.parse(await readFile(join(out, 'tarballs.json'), 'utf8')) as Packed[];
}, 120_000);

afterAll(async () => {
  if (out !== undefined) await rm(out, { recursive: true, force: true });
});

const manifestOf = async (file: string): Promise<Record<string, unknown>> =>
  JSON.parse((await run('tar', ['-xzOf', file, 'package/package.json'])).stdout) as Record<string, unknown>;
const entriesOf = async (file: string): Promise<string[]> => (await run('tar', ['-tzf', file])).stdout.split('\n').filter(Boolean);

describe('pnpm release:pack', () => {
  it('packs the app and every library a user may install, and nothing private', async () => {
    const names = tarballs.map((t) => t.name);
    const dirs = (await readdir(join(root, 'packages'))).map((d) => `@proxy/${d}`);
    expect(names).toEqual(expect.arrayContaining(['@proxy/app', ...dirs]));
    for (const expected of ['@proxy/core', '@proxy/config', '@proxy/engine', '@proxy/tls', '@proxy/dns', '@proxy/mcp']) expect(names).toContain(expected);
    expect(names.some((n) => n.startsWith('@proxy/transform-'))).toBe(true);
    expect(names.some((n) => n.startsWith('@proxy/source-'))).toBe(true);
    for (const internal of ['@proxy/test-kit', '@proxy/vitest-config', '@proxy/eslint-config', 'proxy-monorepo']) expect(names).not.toContain(internal);
    expect((await readdir(out)).filter((f) => f.endsWith('.tgz'))).toHaveLength(tarballs.length);
  });

  it('ships README.md, LICENSE and dist, never src, in every tarball', async () => {
    const license = await readFile(join(root, 'LICENSE'), 'utf8');
    for (const t of tarballs) {
      const entries = await entriesOf(t.file);
      expect(entries, t.name).toEqual(expect.arrayContaining(['package/package.json', 'package/README.md', 'package/LICENSE']));
      expect(entries.some((e) => e.startsWith('package/dist/')), t.name).toBe(true);
      expect(entries.some((e) => e.startsWith('package/src/')), t.name).toBe(false);
      expect((await run('tar', ['-xzOf', t.file, 'package/LICENSE'])).stdout, t.name).toBe(license);
    }
  });

  it('writes manifests with versions for workspace ranges, no source condition and no dev dependencies', async () => {
    for (const t of tarballs) {
      const pkg = await manifestOf(t.file);
      const text = JSON.stringify(pkg);
      expect(pkg.private, t.name).toBeUndefined();
      expect(pkg.license, t.name).toBe('MIT');
      expect(pkg.publishConfig, t.name).toEqual({ access: 'public' });
      expect(pkg.devDependencies, t.name).toBeUndefined();
      expect(pkg.scripts, t.name).toBeUndefined();
      expect(text, t.name).not.toContain('workspace:');
      expect(text, t.name).not.toContain('"@proxy/source":');
      expect(text, t.name).not.toContain('./src/');
    }
    const app = await manifestOf(tarballs.find((t) => t.name === '@proxy/app')!.file);
    expect(app.bin).toEqual({ proxy: './dist/cli.js', 'aws-outbound-jwt-proxy': './dist/aws-outbound-jwt-proxy.js' });
    expect((app.dependencies as Record<string, string>)['@proxy/core']).toMatch(/^\^\d+\.\d+\.\d+/);
    const allowlist = await manifestOf(tarballs.find((t) => t.name === '@proxy/transform-allowlist')!.file);
    expect(allowlist.exports).toEqual({ '.': { types: './dist/index.d.ts', default: './dist/index.js' }, './package.json': './package.json' });
    expect(allowlist.peerDependencies).toEqual({ '@proxy/core': expect.stringMatching(/^\^\d/) as unknown });
  });
});

describe('the tarball check', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  /** Packs `files` (relative name -> content) as a `package/` tarball. */
  async function tarball(files: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-release-check-'));
    dirs.push(dir);
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, 'package', name)), { recursive: true });
      await writeFile(join(dir, 'package', name), content);
    }
    await run('tar', ['-czf', join(dir, 'x.tgz'), '-C', dir, 'package']);
    return join(dir, 'x.tgz');
  }

  it('passes a complete package and names every problem of a broken one', async () => {
    const manifest = { name: '@proxy/x', version: '1.0.0', license: 'MIT', exports: { '.': './dist/index.js' }, dependencies: { ajv: '^8.0.0' } };
    const good = await tarball({
      'package.json': JSON.stringify(manifest),
      'README.md': '# x',
      LICENSE: 'MIT',
      'dist/index.js': "import Ajv from 'ajv';\nimport { readFile } from 'node:fs';\nimport './chunk.js';\nexport default Ajv;\n",
      'dist/chunk.js': '',
    });
    expect(checkTarball(good).problems).toEqual([]);

    const bad = await tarball({
      'package.json': JSON.stringify({ ...manifest, exports: { '.': { '@proxy/source': './src/index.ts', default: './dist/index.js' } }, devDependencies: { '@proxy/test-kit': 'workspace:*' } }),
      'dist/index.js': "import Ajv from 'ajv';\nconst u = await import('undici');\nexport { Ajv, u };\n",
      'src/index.ts': '',
    });
    expect(checkTarball(bad).problems).toEqual(
      expect.arrayContaining([
        'no README.md',
        'no LICENSE',
        'devDependencies in the packed manifest',
        'a workspace: range in the packed manifest',
        'the @proxy/source export condition in the packed manifest',
        'src/ shipped',
        'imports undici, which is not a dependency',
      ]),
    );
  });
});
