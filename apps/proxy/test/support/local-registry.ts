// A local npm registry for the install tests: it serves the workspace tarballs of
// `pnpm release:pack` plus every third-party package they need, taken from this checkout's
// pnpm-installed node_modules (pnpm links each package's dependencies beside it in
// node_modules/.pnpm, so the closure can be walked without a network). Nothing is proxied to
// npmjs: a package that is not here is a 404, so an install through it never leaves 127.0.0.1.
//
// It speaks the read half of the registry protocol npm uses (a packument per name, tarballs
// with sha512 integrity), which is all `npm install`, `npm install -g` and `npx` need.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

type Manifest = Record<string, unknown> & {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};

interface Version {
  readonly manifest: Manifest;
  readonly tarball: string;
  readonly integrity: string;
  readonly shasum: string;
}

export interface LocalRegistry {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  /** Package names served, workspace and third-party. */
  readonly names: readonly string[];
  /** Names npm asked for that are not here (each a 404). */
  readonly misses: ReadonlySet<string>;
  close(): Promise<void>;
}

export interface LocalRegistryOptions {
  /** Workspace tarballs: the file and the directory of the package it was packed from. */
  readonly workspace: readonly { readonly file: string; readonly dir: string }[];
  /** More third-party packages to serve, each resolved from `from`'s node_modules (e.g. a template's dev dependencies). */
  readonly extra?: readonly { readonly name: string; readonly from: string }[];
  /** Where third-party tarballs are written. */
  readonly workDir: string;
}

async function digest(file: string): Promise<{ integrity: string; shasum: string }> {
  const bytes = await readFile(file);
  return {
    integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
    shasum: createHash('sha1').update(bytes).digest('hex'),
  };
}

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** The installed directory of `name` as seen from a package whose own node_modules is `nodeModules`. */
function installedDir(nodeModules: string, name: string): string | undefined {
  const dir = join(nodeModules, name);
  return existsSync(join(dir, 'package.json')) ? realpathSync(dir) : undefined;
}

/** The node_modules directory a pnpm-installed package sits in (its dependencies are its siblings). */
function siblingsOf(dir: string, name: string): string {
  return dir.slice(0, dir.length - name.length);
}

/** Runs `fn` over `items`, `limit` at a time. */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export async function startLocalRegistry(options: LocalRegistryOptions): Promise<LocalRegistry> {
  const versions = new Map<string, Map<string, Version>>();
  const add = (v: Version): void => {
    const byVersion = versions.get(v.manifest.name) ?? new Map<string, Version>();
    byVersion.set(v.manifest.version, v);
    versions.set(v.manifest.name, byVersion);
  };

  const workspaceNames = new Set<string>();
  const thirdParty = new Map<string, { name: string; dir: string }>();
  const queue: { name: string; dir: string }[] = [];
  const visit = (name: string, dir: string | undefined): void => {
    if (dir === undefined || workspaceNames.has(name) || thirdParty.has(dir)) return;
    thirdParty.set(dir, { name, dir });
    queue.push({ name, dir });
  };
  const dependenciesOf = (pkg: Manifest): string[] => [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ];

  for (const w of options.workspace) {
    const manifest = JSON.parse((await run('tar', ['-xzOf', w.file, 'package/package.json'], { maxBuffer: 1 << 24 })).stdout) as Manifest;
    workspaceNames.add(manifest.name);
    add({ manifest, tarball: w.file, ...(await digest(w.file)) });
  }
  for (const w of options.workspace) {
    for (const dep of dependenciesOf(readManifest(w.dir))) visit(dep, installedDir(join(w.dir, 'node_modules'), dep));
  }
  for (const e of options.extra ?? []) visit(e.name, installedDir(join(e.from, 'node_modules'), e.name));
  while (queue.length > 0) {
    const { name, dir } = queue.shift()!;
    for (const dep of dependenciesOf(readManifest(dir))) visit(dep, installedDir(siblingsOf(dir, name), dep));
  }

  await mkdir(options.workDir, { recursive: true });
  let n = 0;
  await eachLimit([...thirdParty.values()], 8, async ({ dir }) => {
    const manifest = readManifest(dir);
    const tarball = join(options.workDir, `${n++}.tgz`);
    // The installed directory is the published tarball's content; pack it back as `package/...`.
    // pnpm hard-links identical files, and npm drops hard-link entries: store each file whole.
    await run('tar', ['--use-compress-program=gzip -1', '-cf', tarball, '--exclude=./node_modules', '--owner=0', '--group=0', '--numeric-owner', '--hard-dereference', '--transform=s,^\\.,package,', '-C', dir, '.']);
    add({ manifest, tarball, ...(await digest(tarball)) });
  });

  const tarballs: string[] = [];
  const misses = new Set<string>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!.slice(1));
    const tarball = /^-\/tarballs\/(\d+)\.tgz$/.exec(path);
    if (tarball !== null && tarballs[Number(tarball[1])] !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(readFileSync(tarballs[Number(tarball[1])]!));
      return;
    }
    const byVersion = versions.get(path);
    if (req.method !== 'GET' || byVersion === undefined) {
      if (req.method === 'GET' && !path.startsWith('-/')) misses.add(path);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
      return;
    }
    const origin = `http://${req.headers.host ?? '127.0.0.1'}`;
    const packument = {
      name: path,
      'dist-tags': { latest: [...byVersion.keys()].sort(compareVersions).at(-1) },
      versions: Object.fromEntries(
        [...byVersion.values()].map((v) => {
          let index = tarballs.indexOf(v.tarball);
          if (index < 0) index = tarballs.push(v.tarball) - 1;
          return [v.manifest.version, { ...v.manifest, _id: `${path}@${v.manifest.version}`, dist: { tarball: `${origin}/-/tarballs/${index}.tgz`, integrity: v.integrity, shasum: v.shasum } }];
        }),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(packument));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    names: [...versions.keys()],
    misses,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Orders plain semver strings (prereleases before their release). */
function compareVersions(a: string, b: string): number {
  const parse = (v: string): [number[], string] => {
    const [core = '', pre = ''] = v.split(/-(.*)/s);
    return [core.split('.').map(Number), pre];
  };
  const [ca, pa] = parse(a);
  const [cb, pb] = parse(b);
  for (let i = 0; i < 3; i++) if ((ca[i] ?? 0) !== (cb[i] ?? 0)) return (ca[i] ?? 0) - (cb[i] ?? 0);
  if (pa === pb) return 0;
  if (pa === '') return 1;
  if (pb === '') return -1;
  return pa < pb ? -1 : 1;
}
