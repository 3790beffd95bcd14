/** Byte-bounded UTF-8 text: the helpers the envelope caps are built on. */

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** True for a UTF-8 continuation byte (`10xxxxxx`). */
function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

/**
 * The longest prefix of `bytes` of at most `max` bytes that does not end inside a multi-byte
 * character.
 */
export function utf8Prefix(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  let end = max;
  // Back off to the start of the character the cut falls in (when it falls inside one).
  while (end > 0 && isContinuation(bytes[end]!)) end--;
  return bytes.subarray(0, end);
}

/** `bytes` as text, or undefined when they are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** `text` cut to at most `max` UTF-8 bytes on a character boundary, with its original byte length. */
export function capUtf8(text: string, max: number): { readonly text: string; readonly bytes: number; readonly truncated: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return { text, bytes: bytes.length, truncated: false };
  return { text: Buffer.from(utf8Prefix(bytes, max)).toString('utf8'), bytes: bytes.length, truncated: true };
}
