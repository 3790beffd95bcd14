/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766): every message is preceded by its length
 * as a two-byte big-endian integer.
 */

/** Prefixes a message with its two-byte length. */
export function frame(message: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(2 + message.length);
  framed.writeUInt16BE(message.length, 0);
  message.copy(framed, 2);
  return framed;
}

/**
 * Reassembles messages from a TCP byte stream: `push` each chunk as it arrives and get back
 * the messages it completed (none while a length prefix or a message is still partial).
 * Never holds more than one incomplete message (at most 65,537 bytes) plus the last chunk.
 */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  /** Adds a chunk; returns every message now complete, in order. */
  push(chunk: Buffer): Buffer[] {
    let buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const messages: Buffer[] = [];
    while (buffer.length >= 2) {
      const end = 2 + buffer.readUInt16BE(0);
      if (buffer.length < end) break;
      messages.push(buffer.subarray(2, end));
      buffer = buffer.subarray(end);
    }
    this.#pending = buffer;
    return messages;
  }
}
