import { describe, expect, it } from 'vitest';
import { parseCommandLine } from './command-line.js';

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
  ])('%j', (argv, expected) => {
    expect(parseCommandLine(argv)).toEqual(expected);
  });

  it.each([
    [[], 'missing --config'],
    [['--config'], 'needs a file path'],
    [['--nope'], 'unknown flag'],
    [['stray'], 'unexpected argument'],
    [['ca'], 'ca generate'],
    [['ca', 'generate', '--alg', 'dsa'], '--alg must be ec, rsa or ed25519'],
    [['ca', 'generate', '--days', '0'], '--days must be'],
    [['ca', 'generate', '--bogus'], 'ca generate:'],
    [['init', '--allow'], 'init:'],
  ])('refuses %j', (argv, message) => {
    const parsed = parseCommandLine(argv);
    expect(parsed.kind).toBe('error');
    expect(parsed.kind === 'error' && parsed.message).toContain(message);
  });
});
