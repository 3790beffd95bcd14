import { configSchemaDocument, readConfigFile } from '@proxy/config';
import type { ConfigRegistry } from '@proxy/config';
import { ConfigError } from '@proxy/core';
import { builtinRegistry, loadConfigRegistry } from './registry.js';

/**
 * The config JSON Schema as the file `schema/proxy.schema.json` holds it: the self-contained
 * document of `configSchemaDocument`, 2-space indented with a trailing newline, so that a
 * regenerated file differs only where the schema does.
 */
export function configSchemaJson(registry: ConfigRegistry): string {
  return `${JSON.stringify(configSchemaDocument(registry), null, 2)}\n`;
}

/**
 * `proxy schema [--config FILE]`: the JSON Schema of the config with the built-in transforms
 * and secret sources; with a config file, also every third-party transform and secret source
 * it names, loaded from the file's directory as `proxy --config FILE` would. The file itself
 * need not be valid, but each name in it must load: one that does not is a `ConfigError`.
 */
export async function configSchemaText(configFile?: string): Promise<string> {
  if (configFile === undefined) return configSchemaJson(builtinRegistry());
  const { registry, issues } = await loadConfigRegistry(await readConfigFile(configFile));
  if (issues.length > 0) throw new ConfigError(issues);
  return configSchemaJson(registry);
}
