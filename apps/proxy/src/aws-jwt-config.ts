import { resolve } from 'node:path';
import type { AwsJwtSettings } from './aws-jwt-command-line.js';

/**
 * Upstream addresses the command line refuses: the cloud credential endpoints only (link-local
 * IPv4 and IPv6, which hold instance metadata, ECS task credentials and EKS Pod Identity; AWS's
 * IPv6 metadata and Pod Identity addresses; Alibaba Cloud's metadata address). Loopback is not
 * denied: the original forwards anywhere and sidecars talk to upstreams on localhost, so a
 * pinned sidecar may name a loopback or private upstream; a shared proxy still cannot be
 * pointed at a credentials endpoint by a client-supplied host header.
 */
const COMPAT_UPSTREAM_DENY_CIDRS = ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128', 'fd00:ec2::23/128', '100.100.100.200/32'];

/**
 * The `proxy --config` YAML equivalent to an aws-outbound-jwt-proxy command line: one reverse
 * listener, the `aws_jwt` transform and, unless disabled, the metrics listener. TLS file paths
 * are made absolute (from `cwd`) so the text means the same wherever it is saved.
 */
export function awsJwtConfigYaml(settings: AwsJwtSettings, cwd: string = process.cwd()): string {
  const q = (text: string): string => JSON.stringify(text);
  const lines = [
    'proxy:',
    `  upstream_deny_cidrs: [${COMPAT_UPSTREAM_DENY_CIDRS.map(q).join(', ')}]`,
    '  reverse:',
    `    - listen: ${q(settings.listenAddr)}`,
    ...(settings.upstreamHost === undefined
      ? [`      host_header: ${q(settings.hostHeader)}`]
      : [`      upstream_host: ${q(settings.upstreamHost)}`]),
    `      upstream_scheme: ${q(settings.upstreamScheme)}`,
    `      upstream_timeout: ${q(settings.upstreamTimeout)}`,
    ...(settings.tlsCert === undefined || settings.tlsKey === undefined
      ? []
      : [`      tls_cert: ${q(resolve(cwd, settings.tlsCert))}`, `      tls_key: ${q(resolve(cwd, settings.tlsKey))}`]),
    'transforms:',
    '  - name: aws_jwt',
    '    config:',
    ...(settings.tokenAudience.length === 0 ? [] : [`      audience: [${settings.tokenAudience.map(q).join(', ')}]`]),
    `      signing_algorithm: ${q(settings.tokenSigningAlgorithm)}`,
    `      duration: ${q(settings.tokenDuration)}`,
    `      refresh_skew: ${q(settings.tokenRefreshSkew)}`,
    ...(settings.metricsEnabled ? ['metrics:', `  listen: ${q(settings.metricsListenAddr)}`, `  path: ${q(settings.metricsPath)}`] : []),
    'log:',
    `  level: ${q(settings.logLevel)}`,
    ...(settings.logFormat === 'text' ? ['# --log-format text has no YAML key: "proxy --config" always writes JSON lines.'] : []),
  ];
  return `${lines.join('\n')}\n`;
}
