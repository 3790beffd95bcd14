import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseConfigText, readConfigFile } from '@proxy/config';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { builtinTransforms, builtinRegistry } from './registry.js';
import { configSchemaJson } from './schema-command.js';
import { starterConfig } from './setup-commands.js';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

const repoFile = (path: string): string => fileURLToPath(new URL(`../../../${path}`, import.meta.url));
const COMMITTED = repoFile('schema/proxy.schema.json');
const REGENERATE = 'regenerate it with `./nodew pnpm schema` (builds, then runs `node apps/proxy/dist/cli.js schema > schema/proxy.schema.json`) and commit it';

/** The configs the committed schema must accept: the bundled example, iron-proxy's published ones, `proxy init`'s. */
const GOOD_CONFIGS = ['examples/quickstart.yaml', 'packages/config/test/fixtures/quickstart.yaml', 'packages/config/test/fixtures/full-example.yaml'];

async function committedSchema(): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(COMMITTED, 'utf8')) as Record<string, unknown>;
}

/**
 * The draft-07 formats, which ajv-formats checks. Its `duration` (ISO 8601, a later draft's) is
 * left out: the config's `duration` is Go's (`30s`), which editors do not check either.
 */
const DRAFT_07_FORMATS = ['date', 'time', 'date-time', 'uri', 'uri-reference', 'uri-template', 'email', 'hostname', 'ipv4', 'ipv6', 'regex', 'json-pointer', 'relative-json-pointer'] as const;

/**
 * The committed schema compiled as another tool would: stock ajv (`strict: false`, so the
 * project's own keywords and formats are ignored), with or without the standard formats.
 */
async function stockValidator(formats = true): Promise<ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
  if (formats) addFormats(ajv, [...DRAFT_07_FORMATS]);
  return ajv.compile(await committedSchema());
}

describe('schema/proxy.schema.json', () => {
  it('is what `proxy schema` prints now', async () => {
    const committed = await readFile(COMMITTED, 'utf8').catch(() => '');
    const fresh = configSchemaJson(builtinRegistry());
    const [have, want] = [committed.split('\n'), fresh.split('\n')];
    const line = want.findIndex((l, i) => l !== have[i]);
    const where = committed === '' ? 'is missing' : `differs from \`proxy schema\` from line ${line + 1} (${JSON.stringify(have[line] ?? '')} instead of ${JSON.stringify(want[line] ?? '')})`;
    expect(committed === fresh, `${COMMITTED} ${where}: ${REGENERATE}`).toBe(true);
  });

  it('holds the config schema of every built-in transform', async () => {
    const definitions = Object.keys((await committedSchema()).definitions as object);
    for (const name of builtinTransforms.keys()) expect(definitions).toContain(`transform.${name}`);
    expect(definitions).toContain('secret-source');
  });

  it.each(GOOD_CONFIGS)('accepts %s in stock ajv', async (file) => {
    const data = (await readConfigFile(repoFile(file))).data;
    for (const validate of [await stockValidator(false), await stockValidator()]) {
      expect(validate(data), JSON.stringify(validate.errors, null, 2)).toBe(true);
    }
  });

  it("is what examples/quickstart.yaml's yaml-language-server modeline names", async () => {
    const first = (await readFile(repoFile('examples/quickstart.yaml'), 'utf8')).split('\n')[0];
    expect(first).toBe('# yaml-language-server: $schema=../schema/proxy.schema.json');
  });

  it('accepts the starter config of `proxy init`', async () => {
    const validate = await stockValidator();
    expect(validate(parseConfigText(starterConfig(['api.example.com']), 'proxy.yaml').data)).toBe(true);
  });

  it.each([
    ['an unknown top-level key', { proxy: {}, transfroms: [] }, '', 'additionalProperties'],
    ['a wrong type', { proxy: { max_connections: 'many' } }, '/proxy/max_connections', 'type'],
    ['an unknown transform field', { transforms: [{ name: 'allowlist', config: { domans: ['a.com'] } }] }, '/transforms/0/config', 'additionalProperties'],
    ['an unknown secret source', { transforms: [{ name: 'secrets', config: { secrets: [{ source: { type: 'vault' } }] } }] }, '/transforms/0/config/secrets/0/source/type', 'enum'],
    ['a malformed standard format', { dns: { proxy_ip: 'not-an-ip' } }, '/dns/proxy_ip', 'format'],
  ])('refuses %s', async (_what, data, instancePath, keyword) => {
    const validate = await stockValidator();
    expect(validate(data)).toBe(false);
    expect(validate.errors).toContainEqual(expect.objectContaining({ instancePath, keyword }));
  });
});
