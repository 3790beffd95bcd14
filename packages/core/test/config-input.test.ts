// Type-level checks of config input types: `pnpm typecheck` (tsc over test/) fails when one regresses;
// the `@ts-expect-error` lines fail it when a wrong config starts to type-check.
import Fastify from 'fastify';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { proxyPlugin, transformPlugin, use, type TransformUse } from '../src/fastify.js';
import { defineTransform, type ConfigInput, type TransformDefinition, type WithDefaults } from '../src/transform.js';

interface TokenConfig {
  readonly header: string;
  readonly prefix: string;
  readonly hosts: readonly string[];
}

/** Two fields defaulted by the schema, one required. */
const token = defineTransform<TokenConfig, WithDefaults<TokenConfig, 'header' | 'prefix'>>({
  name: 'token',
  schema: {
    type: 'object',
    properties: {
      header: { type: 'string', default: 'Authorization' },
      prefix: { type: 'string', default: 'Bearer ' },
      hosts: { type: 'array', items: { type: 'string' } },
    },
    required: ['hosts'],
    additionalProperties: false,
  },
  create(config) {
    // `create` still sees every field: the validator applied the defaults.
    expectTypeOf(config.header).toEqualTypeOf<string>();
    return {
      onRequest(request) {
        request.headers.set(config.header, `${config.prefix}${config.hosts.length}`);
      },
    };
  },
});

/** A third-party definition written before input types: its input is its config. */
const legacy = defineTransform<{ readonly level: number }>({
  name: 'legacy',
  schema: { type: 'object', properties: { level: { type: 'integer' } }, required: ['level'] },
  create: () => ({}),
});

describe('config input types', () => {
  it('types a definition’s input with the defaulted fields optional', () => {
    expectTypeOf<ConfigInput<typeof token>>().toEqualTypeOf<WithDefaults<TokenConfig, 'header' | 'prefix'>>();
    expectTypeOf<{ hosts: string[] }>().toExtend<ConfigInput<typeof token>>();
    expectTypeOf<{ header: string }>().not.toExtend<ConfigInput<typeof token>>();
    expectTypeOf<ConfigInput<typeof legacy>>().toEqualTypeOf<{ readonly level: number }>();
    expectTypeOf(use(token, { hosts: ['a'] })).toEqualTypeOf<TransformUse<TokenConfig, WithDefaults<TokenConfig, 'header' | 'prefix'>>>();
    // A definition with input types still fits where any definition does.
    expectTypeOf(token).toExtend<TransformDefinition>();
  });

  it('accepts configs without defaulted fields in transformPlugin, use() and { transform, config }', async () => {
    const app = Fastify();
    await app.register(transformPlugin(token), { hosts: ['api.example.com'] });
    await app.register(
      proxyPlugin({
        transforms: [use(token, { hosts: ['a'] }), { transform: token, config: { hosts: ['b'], prefix: 'Token ' } }, use(legacy, { level: 1 })],
      }),
    );
    // A list built elsewhere (not a literal tuple) is accepted too.
    const built: TransformUse<TokenConfig, WithDefaults<TokenConfig, 'header' | 'prefix'>>[] = [use(token, { hosts: ['c'], header: 'X-Other' })];
    const mixed = [use(legacy, { level: 2 }), ...built];
    await app.register(proxyPlugin({ transforms: mixed }));
    app.get('/', async (request) => request.headers.authorization);
    expect((await app.inject('/')).body).toBe('Token 1');
    await app.close();
  });

  it('still refuses configs of the wrong shape', () => {
    // Type-only: never called.
    const wrong = (): void => {
      // @ts-expect-error the required `hosts` is missing
      use(token, { header: 'X-Token' });
      // @ts-expect-error `prefix` must be a string
      use(token, { hosts: [], prefix: 1 });
      // @ts-expect-error the legacy definition's `level` is required
      use(legacy, {});
      // @ts-expect-error the object form is checked per entry, too
      proxyPlugin({ transforms: [use(legacy, { level: 1 }), { transform: token, config: { header: 'X' } }] });
      const app = Fastify();
      // @ts-expect-error transformPlugin's options are the config input
      void app.register(transformPlugin(token), { header: 'X' });
    };
    expect(typeof wrong).toBe('function');
  });
});
