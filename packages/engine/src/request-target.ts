/**
 * Parsing of the parts of a request line and of authority values (Host, absolute-form URI,
 * the reverse selection header). Hosts come out in the one normal form rules are matched
 * against and the guard dials: lowercase, punycode, no trailing dot, IPv6 without brackets,
 * IPv4 in dotted-decimal.
 */

/** A destination host and port. */
export interface Authority {
  readonly host: string;
  readonly port: number;
}

/** The origin-form parts of a request target. */
export interface OriginForm {
  /** The path as received (percent-encoding preserved), starting with `/`. */
  readonly path: string;
  /** The raw query without `?` (empty when none). */
  readonly query: string;
}

/** An absolute-form request target (`http://host:port/path?query`). */
export interface AbsoluteForm extends OriginForm {
  readonly scheme: 'http' | 'https';
  /** The authority exactly as written in the URI. */
  readonly authority: string;
}

/** The port a scheme implies. */
export function defaultPort(scheme: 'http' | 'https'): number {
  return scheme === 'https' ? 443 : 80;
}

// Characters an authority (host [":" port]) may hold; userinfo ("@") is not allowed.
const AUTHORITY = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::\d{0,5})?$/;

/**
 * Parses `host[:port]` (an IPv6 host in brackets) into its normal form, or undefined when it
 * is not a valid authority. `fallbackPort` applies when no port is written.
 */
export function parseAuthority(value: string, fallbackPort: number): Authority | undefined {
  const key = `${fallbackPort} ${value}`;
  const cached = parsedAuthorities.get(key);
  if (cached !== undefined || parsedAuthorities.has(key)) return cached;
  const parsed = parseAuthorityText(value.trim(), fallbackPort);
  if (parsedAuthorities.size >= AUTHORITY_CACHE_SIZE) parsedAuthorities.clear();
  parsedAuthorities.set(key, parsed === undefined ? undefined : Object.freeze(parsed));
  return parsed;
}

/**
 * Parsed authorities by `fallbackPort` and text: a proxy sees the same few hosts over and
 * over, and parsing goes through WHATWG URL. Results are immutable; the cache is emptied
 * whenever it fills, so hostile traffic with ever-new names cannot grow it.
 */
const parsedAuthorities = new Map<string, Authority | undefined>();
const AUTHORITY_CACHE_SIZE = 1024;

function parseAuthorityText(text: string, fallbackPort: number): Authority | undefined {
  if (!AUTHORITY.test(text)) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${text}/`);
  } catch {
    return undefined;
  }
  let host = url.hostname;
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '') return undefined;
  // URL drops port 80 for http; an explicit port is read back from the text itself.
  const written = /:(\d{1,5})$/.exec(text)?.[1];
  const port = written === undefined ? fallbackPort : Number(written);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** `host[:port]` for a Host header or a URL, the default port of `scheme` left out. */
export function formatAuthority(authority: Authority, scheme: 'http' | 'https'): string {
  const host = authority.host.includes(':') ? `[${authority.host}]` : authority.host;
  return authority.port === defaultPort(scheme) ? host : `${host}:${authority.port}`;
}

/** Splits an origin-form target; undefined when `target` does not start with `/`. */
export function parseOriginForm(target: string): OriginForm | undefined {
  if (!target.startsWith('/')) return undefined;
  const end = fragmentStart(target);
  const q = target.indexOf('?');
  if (q < 0 || q > end) return { path: target.slice(0, end), query: '' };
  return { path: target.slice(0, q), query: target.slice(q + 1, end) };
}

const ABSOLUTE = /^(https?):\/\/([^/?#]*)(.*)$/is;

/** True when the target is in absolute form with any scheme (`scheme://...`). */
export function isAbsoluteForm(target: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target);
}

/**
 * Splits an `http://` or `https://` absolute-form target, keeping the path exactly as sent
 * (no dot-segment removal, no re-encoding). Undefined for other schemes.
 */
export function parseAbsoluteForm(target: string): AbsoluteForm | undefined {
  const m = ABSOLUTE.exec(target);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase() as 'http' | 'https';
  const rest = m[3]!;
  const origin = parseOriginForm(rest.startsWith('/') ? rest : `/${rest}`);
  if (origin === undefined) return undefined;
  return { scheme, authority: m[2]!, ...origin };
}

/**
 * True when the path has a `.` or `..` segment, spelled plainly or percent-encoded (`%2e`),
 * also where an encoded slash or backslash (`%2f`, `%5c`, `\`) would make one for a lenient
 * upstream, or where a `;parameter` follows the dots (`/..;/`).
 */
export function hasDotSegment(path: string): boolean {
  // Without a dot, a percent sign or a backslash no segment can be or become a dot segment.
  if (!/[.%\\]/.test(path)) return false;
  const decoded = path.replace(/%2e/gi, '.').replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
  for (const segment of decoded.split(/[/\\]/)) {
    const bare = segment.split(';', 1)[0];
    if (bare === '.' || bare === '..') return true;
  }
  return false;
}

function fragmentStart(target: string): number {
  const i = target.indexOf('#');
  return i < 0 ? target.length : i;
}
