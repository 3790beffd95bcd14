import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/proxy-process.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
// Installed next to the config file, as an operator would (see third-party-transform.e2e.test.ts).
const examplePackage = join(root, 'examples/third-party-transform');
const EXAMPLE = '@acme/proxy-transform-example';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'proxy-schema-'));
  await mkdir(join(dir, 'node_modules', '@acme'), { recursive: true });
  await symlink(examplePackage, join(dir, 'node_modules', '@acme', 'proxy-transform-example'), 'dir');
  // Invalid on purpose (unknown section): `schema --config` needs only the names to load.
  await writeFile(join(dir, 'third-party.yaml'), `transforms:\n  - name: "${EXAMPLE}"\nnot_a_section: true\n`);
  await writeFile(join(dir, 'missing.yaml'), 'transforms:\n  - name: "@acme/not-installed"\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('proxy schema', () => {
  it('prints the committed schema/proxy.schema.json', async () => {
    const r = await runCli(['schema']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout === (await readFile(join(root, 'schema/proxy.schema.json'), 'utf8')), 'schema/proxy.schema.json is out of date: run ./nodew pnpm schema').toBe(true);
  });

  it('with --config, adds the third-party transforms that config names', async () => {
    const r = await runCli(['schema', '--config', join(dir, 'third-party.yaml')]);
    expect(r.code, r.stderr).toBe(0);
    const schema = JSON.parse(r.stdout) as { definitions: Record<string, { properties?: Record<string, unknown> }> };
    expect(Object.keys(schema.definitions)).toContain('transform.allowlist');
    expect(schema.definitions['transform._acme_proxy-transform-example']?.properties).toHaveProperty('require_headers');

    const validate = new Ajv({ strict: false, logger: false }).compile(schema);
    expect(validate({ transforms: [{ name: EXAMPLE, config: { require_headers: ['X-Team'] } }] })).toBe(true);
    expect(validate({ transforms: [{ name: EXAMPLE, config: { require_header: ['X-Team'] } }] })).toBe(false);
  });

  it('fails, naming the package, when a transform the config names does not load', async () => {
    const r = await runCli(['schema', '--config', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/missing\.yaml:2:.*@acme\/not-installed.*not installed/);
  });

  it('is in the help', async () => {
    const r = await runCli(['--help']);
    expect(r.stdout).toContain('proxy schema [--config FILE]');
  });
});
