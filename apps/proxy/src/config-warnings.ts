/**
 * Warnings about valid configs that are probably not what the operator meant: a proxy open to
 * every destination, private networks reachable through a wildcard allowlist, an allowlist that
 * refuses nothing, a secret sent to every destination. `proxy validate` prints them and startup
 * logs them; neither fails on them.
 */
import { CidrSet, type ConfigIssue, type RuleConfig } from '@proxy/core';
import { issueAt, type ConfigDocument, type FieldPath, type ProxyConfig } from '@proxy/config';
import type { AllowlistConfig } from '@proxy/transform-allowlist';
import type { SecretEntryConfig, SecretsConfig } from '@proxy/transform-secrets';
import { forwardListeners } from './forward-listeners.js';
import type { LoadedProxyConfig } from './config-loader.js';

/** A warning about a config, located like a config error: file, line, column and field path. */
export type ConfigWarning = ConfigIssue;

/** The private IPv4 networks (RFC 1918) a wildcard allowlist makes reachable unless the deny list holds them. */
const PRIVATE_IPV4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'];
/** IPv6 unique local addresses (RFC 4193), the IPv6 counterpart. */
const UNIQUE_LOCAL_IPV6 = 'fc00::/7';

/**
 * The warnings of a loaded config, ordered by where they are in the file:
 *
 * - no transform decides destinations (none declares `decidesDestinations`, or every allowlist
 *   is in `warn: true` mode) while a listener lets the workload choose the destination (the
 *   forward listeners, or a reverse listener selected by header): an open proxy. Reverse
 *   listeners with a pinned `upstream_host` do not count: their destination is fixed;
 * - an allowlist in `warn: true` mode: it refuses nothing;
 * - an allowlist that permits every destination (`domains: ["*"]`, a rule `host: "*"`, a CIDR
 *   over all of `0.0.0.0/0` or `::/0`) while `proxy.upstream_deny_cidrs` leaves one of the
 *   RFC 1918 networks reachable;
 * - a `secrets` entry that applies to every destination (no rules, a rule `host: "*"` or a
 *   CIDR over every address): the secret goes wherever the allowlist lets requests go;
 * - `mcp_gateway` routes without an `mcp` server: a route applies only to requests a server's
 *   rules match, so none applies.
 */
export function configWarnings(loaded: LoadedProxyConfig): ConfigWarning[] {
  const { document, config, registry } = loaded;
  const deny = CidrSet.parse(config.proxy.upstream_deny_cidrs);
  const warnings: ConfigWarning[] = [];
  let destinationsDecided = false;
  config.transforms.forEach((entry, index) => {
    const at: FieldPath = ['transforms', index, 'config'];
    if (entry.name === 'allowlist') {
      const allowlist = entry.config as AllowlistConfig;
      warnings.push(...allowlistWarnings(document, at, allowlist, deny));
      // A warn-mode allowlist declares the capability but refuses nothing.
      if (allowlist.warn) return;
    } else if (entry.name === 'secrets') {
      warnings.push(...secretsWarnings(loaded, at, entry.config as SecretsConfig));
    }
    if (registry.transforms.get(entry.name)?.decidesDestinations === true) destinationsDecided = true;
  });
  const open = destinationsDecided ? [] : openListeners(config, document);
  const [first] = open;
  if (first !== undefined) {
    warnings.push(
      issueAt(
        document,
        first.path,
        `no transform decides destinations (no allowlist, or only allowlists with warn: true): requests on ${open.map((l) => l.name).join(', ')} ` +
          'are forwarded to any host outside proxy.upstream_deny_cidrs, an open proxy; add an allowlist transform',
      ),
    );
  }
  if ((config.mcp_gateway?.routes.length ?? 0) > 0 && (config.mcp?.servers.length ?? 0) === 0) {
    warnings.push(
      issueAt(
        document,
        ['mcp_gateway', 'routes'],
        'no route applies: the gateway routes only requests an "mcp" server\'s rules match, and the config has no mcp.servers; add a server for each route\'s host',
      ),
    );
  }
  return warnings.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/** An allowlist in warn mode, or one permitting every destination while private networks are not denied. */
function allowlistWarnings(document: ConfigDocument, at: FieldPath, allowlist: AllowlistConfig, deny: CidrSet): ConfigWarning[] {
  if (allowlist.warn) {
    return [issueAt(document, [...at, 'warn'], 'this allowlist is in warn mode and refuses nothing: requests to destinations it does not list are forwarded and only logged')];
  }
  const everywhere = wildcardOf(allowlist);
  const reachable = PRIVATE_IPV4.filter((range) => !deny.containsRange(range));
  if (everywhere === undefined || reachable.length === 0) return [];
  const ipv6 = deny.containsRange(UNIQUE_LOCAL_IPV6) ? '' : ` (and ${UNIQUE_LOCAL_IPV6} for IPv6 unique local addresses)`;
  return [
    issueAt(
      document,
      [...at, ...everywhere],
      'this allowlist permits every destination and proxy.upstream_deny_cidrs does not deny all private networks, so workloads can reach them: ' +
        `add ${reachable.join(', ')}${ipv6} to proxy.upstream_deny_cidrs unless they need them`,
    ),
  ];
}

/** One warning per `secrets` entry that applies to every destination. */
function secretsWarnings(loaded: LoadedProxyConfig, at: FieldPath, config: SecretsConfig): ConfigWarning[] {
  return config.secrets.flatMap((secret, k) => {
    const spray = everyDestination(secret);
    if (spray === undefined) return [];
    return [
      issueAt(
        loaded.document,
        [...at, 'secrets', k, ...spray.path],
        `secret ${secretLabel(loaded, secret)} ${spray.why}: it will be sent to every destination the allowlist permits; add rules naming the hosts it is for`,
      ),
    ];
  });
}

/** Where an allowlist permits every destination (relative to its config), or undefined. */
function wildcardOf(allowlist: AllowlistConfig): FieldPath | undefined {
  const domain = allowlist.domains.indexOf('*');
  if (domain >= 0) return ['domains', domain];
  const cidr = allowlist.cidrs.findIndex(coversEveryAddress);
  if (cidr >= 0) return ['cidrs', cidr];
  for (const [i, rule] of allowlist.rules.entries()) {
    const field = everyDestinationField(rule);
    if (field !== undefined) return ['rules', i, field];
  }
  return undefined;
}

/** Why a secret applies to every destination, and where (relative to the entry); undefined when its rules name destinations. */
function everyDestination(secret: SecretEntryConfig): { path: FieldPath; why: string } | undefined {
  if (secret.rules.length === 0) return { path: ['rules'], why: 'has no rules, so it applies to every destination' };
  for (const [i, rule] of secret.rules.entries()) {
    const field = everyDestinationField(rule);
    if (field === 'host') return { path: ['rules', i, 'host'], why: 'has a rule for host "*", every destination' };
    if (field === 'cidr') return { path: ['rules', i, 'cidr'], why: `has a rule for ${rule.cidr ?? ''}, every IP-literal destination` };
  }
  return undefined;
}

/** The field of a rule that makes it match every destination (`host: "*"`, a CIDR over every address of a family), if any. */
function everyDestinationField(rule: RuleConfig): 'host' | 'cidr' | undefined {
  if (rule.host === '*') return 'host';
  if (rule.cidr !== undefined && coversEveryAddress(rule.cidr)) return 'cidr';
  return undefined;
}

/** True for a CIDR holding all of `0.0.0.0/0` or all of `::/0`. */
function coversEveryAddress(cidr: string): boolean {
  const range = CidrSet.parse([cidr]);
  return range.containsRange('0.0.0.0/0') || range.containsRange('::/0');
}

/** A secret's name in messages: its source's label (the env var, ...) and type. */
function secretLabel({ registry }: LoadedProxyConfig, secret: SecretEntryConfig): string {
  const source = registry.secretSources.find((s) => s.type === secret.source.type);
  return source === undefined ? `(${secret.source.type})` : `${source.label(secret.source)} (${secret.source.type})`;
}

/** The listeners on which the workload chooses the destination, each with the setting that opens it. */
function openListeners(config: ProxyConfig, document: ConfigDocument): { name: string; path: FieldPath }[] {
  const forward = forwardListeners(config, document);
  const open: { name: string; path: FieldPath }[] = [];
  if (forward.http) open.push({ name: 'proxy.http_listen', path: ['proxy', 'http_listen'] });
  if (forward.https) open.push({ name: 'proxy.https_listen', path: ['proxy', 'https_listen'] });
  if (forward.tunnel) open.push({ name: 'proxy.tunnel_listen', path: ['proxy', 'tunnel_listen'] });
  (config.proxy.reverse ?? []).forEach((reverse, i) => {
    if (reverse.upstream_host !== undefined) return;
    open.push({ name: `proxy.reverse[${i}] (upstream named by the ${reverse.host_header} header)`, path: ['proxy', 'reverse', i] });
  });
  return open;
}
