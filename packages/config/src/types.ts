import type { McpConfig, McpGatewayConfig } from '@proxy/mcp';

export type {
  McpArgumentMatcher,
  McpConfig,
  McpGatewayConfig,
  McpGatewayCredentialConfig,
  McpGatewayInjectConfig,
  McpGatewayRouteConfig,
  McpServerConfig,
  McpToolConfig,
} from '@proxy/mcp';

/**
 * The validated configuration, defaults applied. Keys are snake_case, as written in YAML.
 * Durations stay strings (`30s`); read them with core's `parseDuration`.
 */
export interface ProxyConfig {
  /** Present only when the file has a `dns` section. */
  readonly dns?: DnsConfig;
  readonly proxy: ProxySection;
  readonly tls: TlsConfig;
  /** Run in order on every request. */
  readonly transforms: readonly TransformEntry[];
  /** Present only when the file has an `mcp` section. */
  readonly mcp?: McpConfig;
  /** Present only when the file has an `mcp_gateway` section: routes for the requests `mcp` lets through. */
  readonly mcp_gateway?: McpGatewayConfig;
  /** The management API; present only when configured. */
  readonly management?: ManagementConfig;
  /** The metrics endpoint; present only when configured. */
  readonly metrics?: MetricsConfig;
  readonly log: LogConfig;
  /** Additive: switches back to iron-proxy's behaviour where ours differs. Always present (defaults). */
  readonly compat: CompatConfig;
}

/** The `compat` section: iron-proxy's behaviour, where this proxy's default differs on purpose. */
export interface CompatConfig {
  /**
   * Status of a request whose upstream address is in `proxy.upstream_deny_cidrs`: 403 (default;
   * audit action `reject`, `rejected_by: upstream_guard`) or 502, as iron-proxy answers (audit
   * action `error`). The reason is `upstream_denied` either way.
   */
  readonly denied_upstream: 403 | 502;
  /**
   * Open iron-proxy's default listeners when the file names none: `proxy.http_listen` `:80`,
   * `proxy.https_listen` `:443`, DNS on `:53` when a `dns` section enables it, and the metrics
   * listener (`/healthz`) on `:9090`. Default false: only the listeners the file names.
   */
  readonly iron_proxy_defaults: boolean;
}

/** The built-in DNS server. */
export interface DnsConfig {
  /** Default `:53`. */
  readonly listen: string;
  /** Additive: `false` keeps the section (e.g. for `upstream_resolver`) without serving DNS. Default `true`. */
  readonly enabled: boolean;
  /** The IPv4 address every intercepted lookup resolves to; required unless `enabled: false`. */
  readonly proxy_ip?: string;
  /** Additive: the IPv6 address AAAA lookups resolve to. */
  readonly proxy_ipv6?: string;
  /** `ip` or `ip:port`; used for passthrough queries and for upstream connections. */
  readonly upstream_resolver?: string;
  /** Host globs forwarded to the upstream resolver instead of intercepted. Default `[]`. */
  readonly passthrough: readonly string[];
  /** Static records, answered before interception and passthrough. Default `[]`. */
  readonly records: readonly DnsRecordConfig[];
}

/** One static DNS record. */
export interface DnsRecordConfig {
  readonly name: string;
  readonly type: 'A' | 'AAAA' | 'CNAME';
  /** An IPv4 address (A), an IPv6 address (AAAA) or a host name (CNAME). */
  readonly value: string;
}

/** The `proxy` section: listeners, body limits and the upstream guard. */
export interface ProxySection {
  /** Default `:80`. */
  readonly http_listen: string;
  /** Default `:443`. */
  readonly https_listen: string;
  /** CONNECT/SOCKS5 listener; disabled when absent. */
  readonly tunnel_listen?: string;
  /** Default 1048576 (1 MiB); `0` also means the default, as in iron-proxy (never "unlimited"). */
  readonly max_request_body_bytes: number;
  /** Default 0 (no limit of its own; `max_buffered_body_bytes` still bounds it). */
  readonly max_response_body_bytes: number;
  /** Duration, default `30s`, always positive. */
  readonly upstream_response_header_timeout: string;
  /** Additive: the most bytes a forwarded request line and headers may take, after transforms (413 beyond). Default 65536. */
  readonly max_request_header_bytes: number;
  /** Additive: bytes every buffered body of the process may take together (503 beyond); 0 = no limit. Default 128 MiB. */
  readonly max_buffered_body_bytes: number;
  /** Additive: bytes the buffered bodies of one client connection may take (413 beyond); default twice the larger body limit. */
  readonly max_connection_buffered_bytes?: number;
  /** Additive: connections each listener holds at once; more are closed on arrival. 0 = no limit. Default 1024. */
  readonly max_connections: number;
  /**
   * Additive: processes serving the proxy listeners, one per core at most sensibly: an integer
   * from 1 to 256 (`MAX_WORKERS`), or `auto` (the machine's available parallelism). Default 1
   * (one process, no cluster).
   */
  readonly workers: number | 'auto';
  /** Additive: time allowed to send the request headers (408 beyond). Duration, default `30s`. */
  readonly client_header_timeout: string;
  /** Additive: time allowed to send a whole request, body included (408 beyond); `0` = none. Duration, default `5m`. */
  readonly client_request_timeout: string;
  /** Additive: longest silence while a request body arrives (408 beyond). Duration, default `60s`. */
  readonly client_body_timeout: string;
  /** Default `DEFAULT_UPSTREAM_DENY_CIDRS`; an explicit list replaces it, `[]` disables it. */
  readonly upstream_deny_cidrs: readonly string[];
  /** Additive: reverse (sidecar) listeners. Default `[]`. */
  readonly reverse: readonly ReverseListenerConfig[];
  /** Forward proxies to reach upstreams through; `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` (either case) override each field. */
  readonly upstream_proxy?: UpstreamProxyConfig;
}

/** `proxy.upstream_proxy`: proxy URLs (`http://`, `https://`, `socks5://`, `socks5h://`) and Go-style `no_proxy` exceptions. */
export interface UpstreamProxyConfig {
  /** Proxy for plain-HTTP upstreams. */
  readonly http_proxy?: string;
  /** Proxy for TLS upstreams (and tunnels, unless to port 80). */
  readonly https_proxy?: string;
  /** Comma-separated hosts, domains (`.example.com`), IPs and CIDRs reached directly. */
  readonly no_proxy?: string;
}

/** A reverse (sidecar) listener: requests go to a pinned upstream or one named by a header. */
export interface ReverseListenerConfig {
  readonly listen: string;
  /** `host[:port]` every request goes to; when absent, `host_header` names the upstream. */
  readonly upstream_host?: string;
  /** Default `https`. */
  readonly upstream_scheme: 'http' | 'https';
  /** Header naming the upstream when `upstream_host` is unset. Default `X-Upstream-Host`; `Host` means the Host line. */
  readonly host_header: string;
  /** Duration overriding `proxy.upstream_response_header_timeout` for this listener. */
  readonly upstream_timeout?: string;
  /** PEM files to serve TLS on this listener; both or neither. */
  readonly tls_cert?: string;
  readonly tls_key?: string;
}

/** How HTTPS traffic is handled. */
export interface TlsConfig {
  /** Default `mitm`. */
  readonly mode: 'mitm' | 'sni-only';
  /** CA certificate (PEM path) leaves are minted from; required in mitm mode when https/tunnel listeners are configured. */
  readonly ca_cert?: string;
  readonly ca_key?: string;
  /** Default 1000. */
  readonly cert_cache_size: number;
  /** Default 72. */
  readonly leaf_cert_expiry_hours: number;
  /** Additive: extra PEM bundle trusted for upstream TLS, besides the system roots. */
  readonly upstream_ca_bundle?: string;
}

/** One `transforms[]` entry; `config` has been validated against the transform's schema (defaults applied). */
export interface TransformEntry {
  readonly name: string;
  readonly config: unknown;
}

/** The bearer-authenticated management API. */
export interface ManagementConfig {
  readonly listen: string;
  /** Default `IRON_MANAGEMENT_API_KEY`. */
  readonly api_key_env: string;
}

/** The Prometheus metrics endpoint. */
export interface MetricsConfig {
  /** Default `:9090`. */
  readonly listen: string;
  /** Additive, default `/metrics`. */
  readonly path: string;
}

/** Logging. */
export interface LogConfig {
  /** Default `info`. */
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  /**
   * Default `native` (JSON lines on stdout, the record's fields at the top level); `iron-proxy`
   * writes every line as iron-proxy does (stderr, upper-case levels, an `audit` group).
   */
  readonly audit_format: 'native' | 'iron-proxy';
  /**
   * Default 16 MiB: how many bytes of log lines and audit records may wait for a stalled output
   * (a reader that stopped reading stdout) before new ones are dropped. Dropped lines are
   * counted (`proxy_log_dropped_lines_total`) and, once the output catches up, reported in a
   * warning line. Per process (each worker, and the primary).
   */
  readonly max_backlog_bytes: number;
}
