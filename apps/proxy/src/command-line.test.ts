import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { parseCommandLine, resolveWorkerCount } from './command-line.js';

describe('parseCommandLine', () => {
  it.each([
    [['--config', 'p.yaml'], { kind: 'run', configFile: 'p.yaml' }],
    [['-config', 'p.yaml'], { kind: 'run', configFile: 'p.yaml' }],
    [['-config=p.yaml'], { kind: 'run', configFile: 'p.yaml' }],
    [['-c', 'p.yaml'], { kind: 'run', configFile: 'p.yaml' }],
    [['validate', '--config', 'p.yaml'], { kind: 'validate', configFile: 'p.yaml', checkSecrets: false }],
    [['validate', '--config', 'p.yaml', '--check-secrets'], { kind: 'validate', configFile: 'p.yaml', checkSecrets: true }],
    [['--version'], { kind: 'version' }],
    [['-version'], { kind: 'version' }],
    [['help'], { kind: 'help' }],
    [['ca', 'generate'], { kind: 'ca-generate', outDir: '.', algorithm: 'ec' }],
    [
      ['ca', 'generate', '--out', 'certs', '--name', 'My CA', '--days', '30', '--alg', 'rsa'],
      { kind: 'ca-generate', outDir: 'certs', commonName: 'My CA', days: 30, algorithm: 'rsa' },
    ],
    [['init', '--dir', 'x', '--allow', 'a.com, b.com,'], { kind: 'init', dir: 'x', allow: ['a.com', 'b.com'] }],
    [['init'], { kind: 'init', dir: '.', allow: [] }],
    [['schema'], { kind: 'schema' }],
    [['schema', '--config', 'p.yaml'], { kind: 'schema', configFile: 'p.yaml' }],
    [['schema', '--config=p.yaml'], { kind: 'schema', configFile: 'p.yaml' }],
    // iron-proxy: no -config means env and defaults only; -config takes an S3 URL.
    [[], { kind: 'run' }],
    [['-config', 's3://bucket/prod/proxy.yaml'], { kind: 'run', configFile: 's3://bucket/prod/proxy.yaml' }],
    [['validate'], { kind: 'validate', checkSecrets: false }],
    [['version'], { kind: 'version' }],
    [['-v'], { kind: 'version' }],
    [['generate-ca'], { kind: 'ca-generate', outDir: '.', algorithm: 'rsa4096', days: 365 }],
    [
      ['generate-ca', '-outdir', 'certs', '-name', 'Team CA', '-expiry-hours', '36', '-alg', 'ed25519'],
      { kind: 'ca-generate', outDir: 'certs', commonName: 'Team CA', days: 1.5, algorithm: 'ed25519' },
    ],
    [['generate-ca', '--outdir=tmp', '-alg=rsa4096'], { kind: 'ca-generate', outDir: 'tmp', algorithm: 'rsa4096', days: 365 }],
    [['--config', 'p.yaml', '--workers', '4'], { kind: 'run', configFile: 'p.yaml', workers: 4 }],
    [['--workers=auto', '-config', 'p.yaml'], { kind: 'run', configFile: 'p.yaml', workers: 'auto' }],
    [['-workers', '1'], { kind: 'run', workers: 1 }],
    [['--workers', '256'], { kind: 'run', workers: 256 }],
  ])('%j', (argv, expected) => {
    expect(parseCommandLine(argv)).toEqual(expected);
  });

  it.each([
    [['--config'], 'needs a file path or s3:// URL'],
    [['generate-ca', '-alg', 'ec'], '-alg must be rsa4096 or ed25519'],
    [['generate-ca', '-expiry-hours', '0'], '-expiry-hours must be a whole number from 1 to 87600'],
    [['generate-ca', '-expiry-hours', '2h'], '-expiry-hours must be'],
    [['generate-ca', '-days', '3'], 'generate-ca: unknown flag "-days"'],
    [['generate-ca', '-outdir'], '-outdir needs a value'],
    [['generate-ca', 'extra'], 'unexpected argument'],
    [['generate-ca', '-name', ' '], '-name must not be empty'],
    [['--nope'], 'unknown flag'],
    [['-token', 'iprx_x'], 'flag "-token": iron-proxy\'s managed mode (configuration synced from a control plane with a proxy token) is not available in this version'],
    [['--token=iprx_x'], 'is not available in this version; run with -config FILE'],
    [['stray'], 'unexpected argument'],
    [['ca'], 'ca generate'],
    [['ca', 'generate', '--alg', 'dsa'], '--alg must be ec, rsa or ed25519'],
    [['ca', 'generate', '--days', '0'], '--days must be'],
    [['ca', 'generate', '--bogus'], 'ca generate:'],
    [['init', '--allow'], 'init:'],
    [['schema', '--out', 'x.json'], 'schema:'],
    [['schema', 'extra'], 'schema:'],
    [['schema', '--config='], 'schema: --config needs a file path'],
    [['--workers', '0'], 'flag --workers needs a whole number from 1 to 256 or "auto" (got "0")'],
    [['--workers=-1'], '(got "-1")'],
    [['--workers', 'many'], '(got "many")'],
    [['--workers', '2.5'], '(got "2.5")'],
    [['--workers', '257'], '(got "257")'],
    [['--workers', '99999999999999999999'], 'flag --workers needs'],
    [['--workers'], '(got "")'],
    [['validate', '--workers', '2'], 'unknown flag "--workers"'],
  ])('refuses %j', (argv, message) => {
    const parsed = parseCommandLine(argv);
    expect(parsed.kind).toBe('error');
    expect(parsed.kind === 'error' && parsed.message).toContain(message);
  });
});

describe('resolveWorkerCount', () => {
  it('keeps a count and makes auto the available parallelism', () => {
    expect(resolveWorkerCount(3)).toBe(3);
    expect(resolveWorkerCount('auto')).toBe(Math.min(availableParallelism(), 256));
  });
});
