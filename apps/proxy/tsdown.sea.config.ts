import { readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { defineConfig, type UserConfig } from 'tsdown';

const { version } = JSON.parse(readFileSync(new URL('package.json', import.meta.url), 'utf8')) as { version: string };

type Plugin = Extract<NonNullable<UserConfig['plugins']>, readonly unknown[]>[number];

/**
 * The single executable runs one CommonJS script whose `import()` reaches nothing (with the
 * code cache it is not available at all) and whose `require` reaches only Node's built-in
 * modules. Dependencies that load a built-in with `import("http")` get it from `require`.
 */
function builtinImportsToRequire(): Plugin {
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  // Not in strings: messages quote `import('node:buffer')` in backticks.
  const dynamicImport = /(?<![\w.$`])import\(\s*(["'])([\w:/]+)\1\s*\)/g;
  return {
    name: 'sea-builtin-imports',
    transform(code) {
      if (!code.includes('import(')) return null;
      let changed = false;
      const out = code.replace(dynamicImport, (whole, _quote: string, name: string) => {
        if (!builtins.has(name)) return whole;
        changed = true;
        return `Promise.resolve().then(() => { const m = require(${JSON.stringify(name)}); return { ...m, default: m }; })`;
      });
      return changed ? { code: out, map: null } : null;
    },
  };
}

/**
 * `@proxy/transform-grpc` reads its `.proto` from beside its code, which the executable does
 * not have: the bundle carries the parsed definition instead (protobufjs JSON, loaded with
 * proto-loader's `fromJSON` and the same options). The build fails if the call it replaces
 * is gone.
 */
function embeddedTransformProto(): Plugin {
  const grpcRequire = createRequire(createRequire(import.meta.url).resolve('@proxy/transform-grpc'));
  const protoFile = new URL('../../packages/transform-grpc/proto/transform/v1/transform.proto', import.meta.url);
  const protobuf = createRequire(grpcRequire.resolve('@grpc/proto-loader'))('protobufjs') as {
    Root: new () => { loadSync(file: string, options: { keepCase: boolean }): { toJSON(): unknown } };
  };
  const json = JSON.stringify(new protobuf.Root().loadSync(decodeURIComponent(protoFile.pathname), { keepCase: true }).toJSON());
  let replaced = false;
  return {
    name: 'sea-embedded-transform-proto',
    transform(code, id) {
      if (!/transform-grpc[/\\]/.test(id) || !code.includes('loadSync(PROTO_PATH,')) return null;
      replaced = true;
      const out = code.replace('loadSync(PROTO_PATH,', `__seaProtoFromJSON(${json},`);
      return { code: `import { fromJSON as __seaProtoFromJSON } from '@grpc/proto-loader';\n${out}`, map: null };
    },
    buildEnd() {
      if (!replaced) throw new Error('sea-embedded-transform-proto: loadSync(PROTO_PATH, ...) not found in @proxy/transform-grpc');
    },
  };
}

/**
 * The `1password` source's SDK is WebAssembly read from a file beside it (14 MB), which the
 * executable does not carry: the source fails with this message when used.
 */
function onePasswordSdkUnavailable(): Plugin {
  const id = '\0sea-1password-sdk';
  return {
    name: 'sea-1password-sdk',
    resolveId: (source) => (source === '@1password/sdk' ? id : null),
    load: (loading) =>
      loading === id
        ? `throw new Error('the 1Password SDK is not part of the single executable: use the 1password_connect source, or run the proxy with Node.js');`
        : null,
  };
}

/**
 * The single-executable bundle: `src/sea.ts` and everything it imports, workspace packages and
 * npm dependencies alike, in one CommonJS script (what Node 24's SEA runs) with no files beside
 * it. `scripts/build-sea.mjs` turns it into the binary.
 */
export default defineConfig({
  entry: { proxy: 'src/sea.ts' },
  outDir: 'dist-sea',
  format: ['cjs'],
  platform: 'node',
  target: 'node24',
  dts: false,
  clean: true,
  fixedExtension: true,
  deps: { alwaysBundle: [/./], onlyBundle: false },
  define: { __PROXY_VERSION__: JSON.stringify(version) },
  plugins: [builtinImportsToRequire(), embeddedTransformProto(), onePasswordSdkUnavailable()],
  outputOptions: { codeSplitting: false },
  publint: false,
  attw: false,
});
