/**
 * The summary of a multipart body the envelope carries when the body itself is cut or omitted:
 * what parts there are, without their contents, so the model still sees that a file named
 * `payroll.csv` is being uploaded even when only the first 16 KiB (or nothing) of the body fit.
 */

/** One part of a multipart body. */
export interface MultipartPart {
  readonly name?: string;
  readonly filename?: string;
  readonly content_type?: string;
  /** Bytes of the part's content. */
  readonly bytes: number;
}

/** What the envelope's `multipart_summary` holds. */
export interface MultipartSummary {
  readonly content_type: string;
  readonly total_bytes: number;
  /** Parts found (at most {@link MAX_LISTED_PARTS} are listed in `parts`). */
  readonly part_count: number;
  readonly parts: readonly MultipartPart[];
  /** Present when the body did not parse as multipart with the declared boundary. */
  readonly note?: string;
}

/** Most parts listed one by one. */
export const MAX_LISTED_PARTS = 32;
/** Longest name, file name or content type kept for a part. */
const MAX_FIELD_CHARS = 128;

/** The `boundary` parameter of a `multipart/*` content type, or undefined. */
export function multipartBoundary(contentType: string): string | undefined {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/** Summarises a multipart body: each part's name, file name, content type and size. */
export function summarizeMultipart(contentType: string, body: Buffer): MultipartSummary {
  const base = { content_type: contentType.slice(0, MAX_FIELD_CHARS), total_bytes: body.length };
  const boundary = multipartBoundary(contentType);
  if (boundary === undefined) return { ...base, part_count: 0, parts: [], note: 'no boundary parameter in the content type' };
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const parts: MultipartPart[] = [];
  let count = 0;
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const afterDelimiter = at + delimiter.length;
    // `--boundary--` closes the body.
    if (body[afterDelimiter] === 0x2d && body[afterDelimiter + 1] === 0x2d) break;
    const next = body.indexOf(delimiter, afterDelimiter);
    const end = next >= 0 ? next : body.length;
    const part = parsePart(body.subarray(afterDelimiter, end));
    if (part !== undefined) {
      count++;
      if (parts.length < MAX_LISTED_PARTS) parts.push(part);
    }
    at = next;
  }
  if (count === 0) return { ...base, part_count: 0, parts: [], note: 'no part found with the declared boundary' };
  return { ...base, part_count: count, parts };
}

/** One part between two delimiters: `\r\n` headers `\r\n\r\n` content `\r\n`. */
function parsePart(raw: Buffer): MultipartPart | undefined {
  const headerEnd = raw.indexOf('\r\n\r\n');
  if (headerEnd < 0) return undefined;
  const headers = raw.subarray(0, headerEnd).toString('latin1').split('\r\n');
  let contentEnd = raw.length;
  if (raw[contentEnd - 2] === 0x0d && raw[contentEnd - 1] === 0x0a) contentEnd -= 2;
  let name: string | undefined;
  let filename: string | undefined;
  let contentType: string | undefined;
  for (const line of headers) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const field = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (field === 'content-disposition') {
      name = dispositionParam(value, 'name');
      filename = dispositionParam(value, 'filename');
    } else if (field === 'content-type') {
      contentType = value.slice(0, MAX_FIELD_CHARS);
    }
  }
  return {
    ...(name === undefined ? {} : { name }),
    ...(filename === undefined ? {} : { filename }),
    ...(contentType === undefined ? {} : { content_type: contentType }),
    bytes: Math.max(0, contentEnd - headerEnd - 4),
  };
}

function dispositionParam(disposition: string, param: string): string | undefined {
  const match = new RegExp(`;\\s*${param}=(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(disposition);
  const value = match?.[1] ?? match?.[2];
  return value === undefined ? undefined : Buffer.from(value, 'latin1').toString('utf8').slice(0, MAX_FIELD_CHARS);
}
