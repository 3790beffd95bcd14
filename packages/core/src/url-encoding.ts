/**
 * Encodes a value for a URL path segment: everything outside the path characters of
 * RFC 3986 (unreserved, sub-delims, `:` and `@`) is percent-encoded, so a secret cannot add
 * segments, a query or a fragment.
 */
export function encodePathValue(value: string): string {
  return encodeURIComponent(value).replace(/%(24|26|2B|2C|3A|3B|3D|40)/g, (escape) => decodeURIComponent(escape));
}

/** Encodes a query parameter name or value. */
export function encodeQueryValue(value: string): string {
  return encodeURIComponent(value);
}

/**
 * Sets `name` in a raw query string: removes every existing parameter of that name (compared
 * decoded) and appends `name=value`, both encoded. Other parameters keep their raw form.
 */
export function setQueryParam(query: string, name: string, value: string): string {
  const kept = query === '' ? [] : query.split('&').filter((pair) => pair !== '' && decodeQueryComponent(pair.split('=', 1)[0]!) !== name);
  kept.push(`${encodeQueryValue(name)}=${encodeQueryValue(value)}`);
  return kept.join('&');
}

/** Decodes a query component (`+` is a space); malformed escapes are left as they are. */
function decodeQueryComponent(text: string): string {
  const spaced = text.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}
