import { describe, expect, it } from 'vitest';
import { parseAwsJwtCommandLine, type AwsJwtSettings } from './aws-jwt-command-line.js';
import { awsJwtConfigYaml } from './aws-jwt-config.js';
import { loadProxyConfig } from './config-loader.js';

/** The settings a command line yields; fails the test on a usage error. */
function settingsOf(argv: readonly string[], env: Record<string, string> = {}): AwsJwtSettings {
  const parsed = parseAwsJwtCommandLine(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected a run command, got ${JSON.stringify(parsed)}`);
  return parsed.settings;
}

/** The usage error a command line yields; fails the test otherwise. */
function errorOf(argv: readonly string[], env: Record<string, string> = {}): string {
  const parsed = parseAwsJwtCommandLine(argv, env);
  if (parsed.kind !== 'error') throw new Error(`expected a usage error, got ${JSON.stringify(parsed)}`);
  return parsed.message;
}

describe('parseAwsJwtCommandLine', () => {
  it('applies the reference defaults', () => {
    expect(settingsOf([])).toEqual({
      listenAddr: ':8080',
      upstreamScheme: 'https',
      hostHeader: 'X-Upstream-Host',
      upstreamTimeout: '30s',
      tokenAudience: [],
      tokenSigningAlgorithm: 'RS256',
      tokenDuration: '1h',
      tokenRefreshSkew: '5m',
      logLevel: 'info',
      logFormat: 'json',
      metricsEnabled: true,
      metricsListenAddr: ':9090',
      metricsPath: '/metrics',
    });
  });

  it('reads --flag=value, --flag value and -flag forms, and repeated audiences', () => {
    const s = settingsOf([
      '--upstream-host=api.example.com:8443',
      '--upstream-scheme',
      'http',
      '-listen-addr=127.0.0.1:7000',
      '--token-audience=https://a.test',
      '--token-audience',
      'https://b.test',
      '--token-signing-algorithm=es384',
      '--token-duration=15m',
      '--token-refresh-skew=1m',
      '--log-level=DEBUG',
      '--log-format=text',
      '--tls-cert=c.pem',
      '--tls-key=k.pem',
      '--metrics-enabled',
      'false',
      '--host-header=X-Target',
    ]);
    expect(s).toMatchObject({
      upstreamHost: 'api.example.com:8443',
      upstreamScheme: 'http',
      listenAddr: '127.0.0.1:7000',
      tokenAudience: ['https://a.test', 'https://b.test'],
      tokenSigningAlgorithm: 'ES384',
      tokenDuration: '15m',
      tokenRefreshSkew: '1m',
      logLevel: 'debug',
      logFormat: 'text',
      tlsCert: 'c.pem',
      tlsKey: 'k.pem',
      metricsEnabled: false,
      hostHeader: 'X-Target',
    });
  });

  it('reads each flag from its environment variable, flags winning', () => {
    const env = {
      UPSTREAM_HOST: 'env.example.com',
      TOKEN_AUDIENCE: 'https://a.test,https://b.test',
      LISTEN_ADDR: ':7001',
      METRICS_ENABLED: 'false',
      TOKEN_DURATION: '10m',
      TOKEN_REFRESH_SKEW: '2m',
      LOG_FORMAT: 'text',
      HOST_HEADER: 'X-Env',
    };
    expect(settingsOf([], env)).toMatchObject({
      upstreamHost: 'env.example.com',
      tokenAudience: ['https://a.test', 'https://b.test'],
      listenAddr: ':7001',
      metricsEnabled: false,
      tokenDuration: '10m',
      tokenRefreshSkew: '2m',
      logFormat: 'text',
      hostHeader: 'X-Env',
    });
    expect(settingsOf(['--upstream-host=flag.example.com', '--token-audience=https://flag.test', '--metrics-enabled=true'], env)).toMatchObject({
      upstreamHost: 'flag.example.com',
      tokenAudience: ['https://flag.test'],
      metricsEnabled: true,
    });
  });

  it('allows equal listen and metrics addresses on port 0 (two ephemeral ports)', () => {
    expect(settingsOf(['--listen-addr=127.0.0.1:0', '--metrics-listen-addr=127.0.0.1:0']).metricsListenAddr).toBe('127.0.0.1:0');
  });

  it.each([
    ['skew equal to the duration', ['--token-duration=10m', '--token-refresh-skew=10m'], {}, '--token-refresh-skew'],
    ['skew above the duration (from env)', [], { TOKEN_DURATION: '2m', TOKEN_REFRESH_SKEW: '5m' }, '--token-refresh-skew'],
    ['a zero skew', ['--token-refresh-skew=0s'], {}, '--token-refresh-skew'],
    ['a duration under 60s', ['--token-duration=59s', '--token-refresh-skew=10s'], {}, '--token-duration'],
    ['a duration over 1h', ['--token-duration=61m'], {}, '--token-duration'],
    ['a fractional duration', ['--token-duration=90.5s'], {}, '--token-duration'],
    ['only --tls-cert', ['--tls-cert=c.pem'], {}, '--tls-cert'],
    ['only --tls-key', ['--tls-key=k.pem'], {}, '--tls-key'],
    ['only TLS_KEY in env', [], { TLS_KEY: 'k.pem' }, '--tls-key'],
    ['metrics address equal to the listen address', ['--listen-addr=:8080', '--metrics-listen-addr=:8080'], {}, '--metrics-listen-addr'],
    ['metrics on a wildcard host at the listen port', ['--listen-addr=127.0.0.1:8080', '--metrics-listen-addr=:8080'], {}, '--metrics-listen-addr'],
    ['a metrics path without /', ['--metrics-path=metrics'], {}, '--metrics-path'],
    ['an empty audience flag', ['--token-audience='], {}, '--token-audience'],
    ['a whitespace audience flag', ['--token-audience=https://a.test', '--token-audience=  '], {}, '--token-audience'],
    ['TOKEN_AUDIENCE set but empty', [], { TOKEN_AUDIENCE: '' }, '--token-audience'],
    ['an empty audience in the env list', [], { TOKEN_AUDIENCE: 'https://a.test,,https://b.test' }, 'TOKEN_AUDIENCE="https://a.test,,https://b.test"'],
    ['a trailing comma in TOKEN_AUDIENCE', [], { TOKEN_AUDIENCE: 'https://a.test,' }, 'TOKEN_AUDIENCE'],
    ['a bad scheme', ['--upstream-scheme=ftp'], {}, '--upstream-scheme'],
    ['a URL as upstream host', ['--upstream-host=https://api.example.com'], {}, '--upstream-host'],
    ['a path in the upstream host', ['--upstream-host=api.example.com/v1'], {}, '--upstream-host'],
    ['a bad algorithm', ['--token-signing-algorithm=HS256'], {}, '--token-signing-algorithm'],
    ['a bad upstream timeout', ['--upstream-timeout=soon'], {}, '--upstream-timeout'],
    ['a zero upstream timeout', ['--upstream-timeout=0'], {}, '--upstream-timeout'],
    ['a bad token duration', ['--token-duration=1 hour'], {}, '--token-duration'],
    ['a bad skew', ['--token-refresh-skew=5'], {}, '--token-refresh-skew'],
    ['a bad log level', ['--log-level=trace'], {}, '--log-level'],
    ['a bad log format', ['--log-format=yaml'], {}, '--log-format'],
    ['a bad log level from env', [], { LOG_LEVEL: 'verbose' }, '--log-level'],
    ['a bad boolean', ['--metrics-enabled=yes'], {}, '--metrics-enabled'],
    ['a bad listen address', ['--listen-addr=8080'], {}, '--listen-addr'],
    ['a bad metrics address', ['--metrics-listen-addr=:99999'], {}, '--metrics-listen-addr'],
    ['a bad host header', ['--host-header=X Target'], {}, '--host-header'],
    ['a flag without its value', ['--upstream-host'], {}, '--upstream-host'],
    ['an unknown flag', ['--upstream-port=80'], {}, '--upstream-port'],
  ])('refuses %s, naming the flag', (_what, argv, env, flag) => {
    expect(errorOf(argv, env)).toContain(flag);
  });

  it('refuses TOKEN_AUDIENCE set but empty, saying how to get the derived audience', () => {
    expect(errorOf([], { TOKEN_AUDIENCE: '' })).toBe('--token-audience: TOKEN_AUDIENCE is set but empty (unset it to derive the audience from the upstream host)');
    // A flag wins over the empty variable, as over any other.
    expect(settingsOf(['--token-audience=https://a.test'], { TOKEN_AUDIENCE: '' }).tokenAudience).toEqual(['https://a.test']);
  });

  it.each([
    ['a space after the comma', { TOKEN_AUDIENCE: 'https://a.test, https://b.test' }, '" https://b.test"'],
    ['a space before the comma', { TOKEN_AUDIENCE: 'https://a.test ,https://b.test' }, '"https://a.test "'],
    ['an inner space', { TOKEN_AUDIENCE: 'https://a .test' }, '"https://a .test"'],
    ['a tab', { TOKEN_AUDIENCE: 'https://a.test\t' }, '"https://a.test\\t"'],
    ['a newline', { TOKEN_AUDIENCE: 'https://a.test\nhttps://b.test' }, '"https://a.test\\nhttps://b.test"'],
  ])('refuses an audience with whitespace from the environment (%s), naming TOKEN_AUDIENCE and the audience', (_what, env, shown) => {
    const message = errorOf([], env);
    expect(message).toMatch(/^--token-audience: audience /);
    expect(message).toContain(shown);
    expect(message).toContain(`TOKEN_AUDIENCE=${JSON.stringify(env.TOKEN_AUDIENCE)}`);
    expect(message).toContain('contains whitespace');
  });

  it('refuses an audience flag with whitespace, naming the flag and the audience', () => {
    expect(errorOf(['--token-audience=https://a.test', '--token-audience', ' https://b.test'])).toBe(
      '--token-audience: audience " https://b.test" contains whitespace (separate audiences with a comma only)',
    );
    expect(errorOf(['--token-audience=https://a .test'])).toContain('"https://a .test"');
    // Nothing is trimmed into a different audience.
    expect(settingsOf(['--token-audience=https://a.test']).tokenAudience).toEqual(['https://a.test']);
  });

  it('refuses a positional argument', () => {
    expect(errorOf(['api.example.com'])).toContain('unexpected argument "api.example.com"');
  });

  it('answers --help, -h and --version before validating', () => {
    expect(parseAwsJwtCommandLine(['--token-duration=1s', '--help'], {})).toEqual({ kind: 'help' });
    expect(parseAwsJwtCommandLine(['-h'], {})).toEqual({ kind: 'help' });
    expect(parseAwsJwtCommandLine(['--version'], { LOG_LEVEL: 'bogus' })).toEqual({ kind: 'version' });
  });

  it('answers the version and help subcommands, alone on the command line', () => {
    expect(parseAwsJwtCommandLine(['version'], { LOG_LEVEL: 'bogus' })).toEqual({ kind: 'version' });
    expect(parseAwsJwtCommandLine(['help'], { TOKEN_AUDIENCE: '' })).toEqual({ kind: 'help' });
    expect(errorOf(['version', '--log-level=debug'])).toBe('version: takes no arguments (got "--log-level=debug")');
    expect(errorOf(['help', 'me'])).toContain('help: takes no arguments');
    // Only as the first argument: elsewhere they stay positionals.
    expect(errorOf(['--log-level=debug', 'version'])).toContain('unexpected argument "version"');
  });

  it('marks --print-config', () => {
    const parsed = parseAwsJwtCommandLine(['--print-config'], {});
    expect(parsed.kind === 'run' && parsed.printConfig).toBe(true);
    const plain = parseAwsJwtCommandLine([], {});
    expect(plain.kind === 'run' && plain.printConfig).toBe(false);
  });
});

describe('awsJwtConfigYaml', () => {
  it('writes a pinned command line as a reverse listener, the aws_jwt transform and metrics', () => {
    const yaml = awsJwtConfigYaml(
      settingsOf(['--upstream-host=api.example.com', '--token-audience=https://a.test', '--token-audience=https://b.test', '--tls-cert=c.pem', '--tls-key=k.pem']),
      '/etc/proxy',
    );
    expect(yaml).toBe(`proxy:
  upstream_deny_cidrs: ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "fd00:ec2::23/128", "100.100.100.200/32"]
  reverse:
    - listen: ":8080"
      upstream_host: "api.example.com"
      upstream_scheme: "https"
      upstream_timeout: "30s"
      tls_cert: "/etc/proxy/c.pem"
      tls_key: "/etc/proxy/k.pem"
transforms:
  - name: aws_jwt
    config:
      audience: ["https://a.test", "https://b.test"]
      signing_algorithm: "RS256"
      duration: "1h"
      refresh_skew: "5m"
metrics:
  listen: ":9090"
  path: "/metrics"
log:
  level: "info"
`);
  });

  it('writes header mode without an audience (dynamic) and without metrics when disabled', () => {
    const yaml = awsJwtConfigYaml(settingsOf(['--host-header=X-Target', '--metrics-enabled=false', '--log-format=text']));
    expect(yaml).toContain('      host_header: "X-Target"\n');
    expect(yaml).not.toContain('upstream_host');
    expect(yaml).not.toContain('audience');
    expect(yaml).not.toContain('metrics:');
    expect(yaml).toContain('# --log-format text');
  });

  it('produces config text the YAML loader accepts unchanged', async () => {
    const settings = settingsOf(['--upstream-host=127.0.0.1:9', '--token-audience=https://a.test', '--token-duration=15m', '--log-level=debug']);
    const { config } = await loadProxyConfig({ text: awsJwtConfigYaml(settings), name: '<command line>' });
    expect(config.proxy.reverse).toEqual([
      expect.objectContaining({ listen: ':8080', upstream_host: '127.0.0.1:9', upstream_scheme: 'https', upstream_timeout: '30s' }),
    ]);
    expect(config.transforms).toEqual([
      { name: 'aws_jwt', config: expect.objectContaining({ audience: ['https://a.test'], duration: '15m', refresh_skew: '5m', signing_algorithm: 'RS256' }) },
    ]);
    expect(config.metrics).toEqual({ listen: ':9090', path: '/metrics' });
    expect(config.log.level).toBe('debug');
  });
});
