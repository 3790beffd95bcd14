#!/usr/bin/env node
// `pnpm release:pack [--out <dir>]`: packs every publishable workspace package (every package
// that is not `private`) into one directory (default `dist-tarballs/`, git-ignored) with
// `pnpm pack`, which rewrites `workspace:` ranges to versions and runs the root `.pnpmfile.cjs`
// `beforePacking` hook (no `@proxy/source` condition, no dev dependencies, no scripts). Then it
// checks every tarball: README.md, LICENSE and package.json present, the license field set,
// nothing from `src/`, every file named by `exports`, `main`, `types` and `bin` shipped, every
// package the shipped JavaScript imports declared as a (peer) dependency. It
// prints the tarballs and exits non-zero on any problem. Build first (`pnpm build`);
// `pnpm release:pack` does.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The workspace packages (from pnpm-workspace.yaml's `dir/*` globs) that are not private. */
export function publishablePackages() {
  const lines = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8').split('\n');
  const globs = lines.map((l) => /^\s*-\s*["']?([^"'\s!]+)\/\*["']?\s*$/.exec(l)?.[1]).filter((g) => g !== undefined);
  const excluded = new Set(lines.map((l) => /^\s*-\s*["']?!([^"'\s]+)["']?\s*$/.exec(l)?.[1]).filter((g) => g !== undefined));
  const out = [];
  for (const parent of globs) {
    const parentDir = join(root, parent);
    if (!existsSync(parentDir)) continue;
    for (const entry of readdirSync(parentDir, { withFileTypes: true })) {
      const manifest = join(parentDir, entry.name, 'package.json');
      if (!entry.isDirectory() || !existsSync(manifest) || excluded.has(`${parent}/${entry.name}`)) continue;
      const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
      if (pkg.private !== true) out.push({ name: pkg.name, version: pkg.version, dir: join(parentDir, entry.name) });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The tarball file name `pnpm pack` gives a package. */
export function tarballName(name, version) {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
}

/** Every path a manifest says the package provides (exports targets, main, types, bin). */
function declaredFiles(pkg) {
  const files = new Set();
  const walk = (v) => {
    if (typeof v === 'string') {
      if (v.startsWith('./') && !v.includes('*')) files.add(v.slice(2));
    } else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(pkg.exports);
  for (const f of [pkg.main, pkg.module, pkg.types]) if (typeof f === 'string') files.add(f.replace(/^\.\//, ''));
  walk(typeof pkg.bin === 'string' ? { bin: pkg.bin } : (pkg.bin ?? {}));
  for (const f of Object.values(pkg.bin ?? {})) if (typeof f === 'string') files.add(f.replace(/^\.\//, ''));
  return [...files];
}

/** Package names the shipped JavaScript imports (static, dynamic and side-effect imports, require). */
function importedPackages(dir) {
  const names = new Set();
  const patterns = [/\bfrom\s*["']([^"'\n]+)["']/g, /\bimport\s*\(\s*["']([^"'\n]+)["']\s*\)/g, /^\s*import\s*["']([^"'\n]+)["']/gm, /\brequire\s*\(\s*["']([^"'\n]+)["']\s*\)/g];
  for (const file of readdirSync(dir, { recursive: true })) {
    if (!/\.(m|c)?js$/.test(file)) continue;
    const text = readFileSync(join(dir, file), 'utf8');
    for (const pattern of patterns) {
      for (const [, spec] of text.matchAll(pattern)) {
        if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
      }
    }
  }
  return names;
}

/** Problems with one packed tarball; empty when it is publish-ready. */
export function checkTarball(file) {
  const entries = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((e) => e.replace(/^package\//, ''));
  const pkg = JSON.parse(execFileSync('tar', ['-xzOf', file, 'package/package.json'], { encoding: 'utf8' }));
  const problems = [];
  for (const required of ['package.json', 'README.md', 'LICENSE']) if (!entries.includes(required)) problems.push(`no ${required}`);
  if (typeof pkg.license !== 'string' || pkg.license === '') problems.push('no license field');
  if (pkg.private === true) problems.push('private');
  if (pkg.devDependencies !== undefined) problems.push('devDependencies in the packed manifest');
  const text = JSON.stringify(pkg);
  if (text.includes('workspace:')) problems.push('a workspace: range in the packed manifest');
  if (text.includes('"@proxy/source":')) problems.push('the @proxy/source export condition in the packed manifest');
  if (entries.some((e) => e.startsWith('src/'))) problems.push('src/ shipped');
  for (const f of declaredFiles(pkg)) if (!entries.includes(f)) problems.push(`${f} is declared but not shipped (built?)`);
  // Every package the shipped code imports must be a dependency or peer dependency: a dev
  // dependency is not installed for a user.
  const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {}), pkg.name]);
  const unpacked = mkdtempSync(join(tmpdir(), 'release-pack-'));
  try {
    execFileSync('tar', ['-xzf', file, '-C', unpacked]);
    for (const name of importedPackages(join(unpacked, 'package'))) if (!declared.has(name)) problems.push(`imports ${name}, which is not a dependency`);
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
  }
  return { name: pkg.name, version: pkg.version, problems };
}

/** Packs every publishable package into `outDir`; returns the tarballs, throwing on any problem. */
export function releasePack(outDir) {
  const packages = publishablePackages();
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const filters = packages.flatMap((p) => ['--filter', p.name]);
  execFileSync('pnpm', ['-r', ...filters, 'pack', '--pack-destination', outDir], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarballs = [];
  const problems = [];
  for (const p of packages) {
    const file = join(outDir, tarballName(p.name, p.version));
    if (!existsSync(file)) {
      problems.push(`${p.name}: no tarball ${file}`);
      continue;
    }
    const checked = checkTarball(file);
    for (const problem of checked.problems) problems.push(`${p.name}: ${problem}`);
    tarballs.push({ name: p.name, version: p.version, dir: p.dir, file });
  }
  if (problems.length > 0) throw new Error(`release:pack found problems:\n  ${problems.join('\n  ')}`);
  writeFileSync(join(outDir, 'tarballs.json'), JSON.stringify(tarballs, null, 2) + '\n');
  return tarballs;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const outDir = resolve(i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : join(root, 'dist-tarballs'));
  try {
    for (const t of releasePack(outDir)) process.stdout.write(`${t.file}\n`);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
