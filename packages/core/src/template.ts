import { ErrorCodes, ProxyError } from './errors.js';

/**
 * The safe template mini-language of `formatter`, header and message templates: a subset of
 * Go templates. Text, `{{ .Field }}`, and function calls `{{ base64 "x-access-token:" .Value }}`
 * whose arguments are string literals (escapes `\"` and `\\`) or fields. `base64` concatenates
 * its arguments and base64-encodes the result. `{{-` and `-}}` trim the white space before and
 * after the action. Dotted fields (`.Credentials.key`) are allowed when `allowedFields` holds
 * `Credentials.*`. No loops, no conditionals, no other functions.
 */
export interface CompiledTemplate {
  /** The fields the template references, e.g. `["Value"]` or `["Credentials.key"]`. */
  readonly fields: readonly string[];
  /**
   * Renders the template. `data` is keyed by field name without the leading dot (dotted
   * fields by their full name: `data["Credentials.key"]`); a field missing from `data`
   * renders as the empty string.
   */
  render(data: Readonly<Record<string, string>>): string;
  /**
   * Renders the template to bytes: text and string fields as UTF-8, `Uint8Array` fields as
   * they are (a request body that is not valid UTF-8 is kept byte for byte, as Go's
   * `string(bytes)` keeps it). What a message to be signed is rendered with.
   */
  renderBytes(data: Readonly<Record<string, string | Uint8Array>>): Buffer;
}

/** The functions templates may call. */
export const templateFunctions: readonly string[] = ['base64'];

/** A field reference or a string literal: what an action prints or passes to a function. */
type Operand = { readonly field: string } | { readonly literal: string };
/** One precompiled piece of output: text, an operand, or a `base64` call over operands. */
type Part = string | Operand | { readonly base64: readonly Operand[] };

/** A lexical token inside `{{ ... }}`, with its offset in the source. */
type Token = { readonly at: number } & ({ readonly field: string } | { readonly literal: string } | { readonly ident: string });

/**
 * Parses a template once, at config load. Throws a `ProxyError` with code
 * `PROXY_ERR_CONFIG_TEMPLATE` when it does not parse (unterminated or empty action,
 * unterminated string, unexpected character), calls an unknown function or references a
 * field not in `allowedFields`; the message names the field or function and its offset.
 */
export function compileTemplate(source: string, allowedFields: readonly string[]): CompiledTemplate {
  const parts: Part[] = [];
  const fields = new Set<string>();
  const fail = (what: string, at: number): ProxyError =>
    new ProxyError(ErrorCodes.CONFIG_TEMPLATE, `template ${what} at offset ${at}`, { reason: 'config_template' });

  const checkField = (token: Token & { field: string }): Operand => {
    if (!fieldAllowed(token.field, allowedFields)) throw fail(`references unknown field .${token.field}`, token.at);
    fields.add(token.field);
    return { field: token.field };
  };
  const operand = (token: Token): Operand => {
    if ('field' in token) return checkField(token);
    if ('literal' in token) return { literal: token.literal };
    throw fail(`uses function ${token.ident} as an argument`, token.at);
  };

  let pos = 0;
  let trimNext = false;
  while (pos < source.length) {
    const open = source.indexOf('{{', pos);
    let text = source.slice(pos, open < 0 ? source.length : open);
    if (trimNext) text = trimStart(text);
    if (open < 0) {
      pushText(parts, text);
      break;
    }
    let at = open + 2;
    if (source[at] === '-' && isSpace(source[at + 1])) {
      text = trimEnd(text);
      at++;
    }
    pushText(parts, text);
    const action = lexAction(source, at, open, fail);
    pos = action.end;
    trimNext = action.trimRight;
    const [head, ...args] = action.tokens;
    if (head === undefined) throw fail('has an empty action', open);
    if ('ident' in head) {
      if (!templateFunctions.includes(head.ident)) throw fail(`calls unknown function ${head.ident}`, head.at);
      if (args.length === 0) throw fail(`calls ${head.ident} without arguments`, head.at);
      parts.push({ base64: args.map(operand) });
    } else {
      if (args[0] !== undefined) throw fail('has more than one value in an action without a function', args[0].at);
      parts.push(operand(head));
    }
  }
  return compiled(parts, [...fields]);
}

function compiled(parts: readonly Part[], fields: readonly string[]): CompiledTemplate {
  const only = parts.length === 1 ? parts[0] : undefined;
  const renderBytes = (data: Readonly<Record<string, string | Uint8Array>>): Buffer =>
    Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : toBytes(valueOf(part, data)))));
  if (parts.length === 0) return { fields, render: () => '', renderBytes: () => Buffer.alloc(0) };
  if (typeof only === 'string') return { fields, render: () => only, renderBytes };
  return {
    fields,
    render(data) {
      let out = '';
      // With string data every value is a string (a `base64` call yields one too).
      for (const part of parts) out += typeof part === 'string' ? part : (valueOf(part, data) as string);
      return out;
    },
    renderBytes,
  };
}

/** What an operand or a `base64` call prints, given the data: a string, or bytes as given. */
function valueOf(part: Exclude<Part, string>, data: Readonly<Record<string, string | Uint8Array>>): string | Uint8Array {
  if ('base64' in part) return Buffer.concat(part.base64.map((a) => toBytes(operandValue(a, data)))).toString('base64');
  return operandValue(part, data);
}

function operandValue(operand: Operand, data: Readonly<Record<string, string | Uint8Array>>): string | Uint8Array {
  return 'field' in operand ? (data[operand.field] ?? '') : operand.literal;
}

function toBytes(value: string | Uint8Array): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Reads the tokens of one action from `from` up to and including its `}}`. */
function lexAction(
  source: string,
  from: number,
  open: number,
  fail: (what: string, at: number) => ProxyError,
): { tokens: Token[]; end: number; trimRight: boolean } {
  const tokens: Token[] = [];
  let i = from;
  for (;;) {
    while (isSpace(source[i])) i++;
    if (i >= source.length) throw fail('has an unterminated action', open);
    if (source.startsWith('}}', i)) return { tokens, end: i + 2, trimRight: false };
    if (source.startsWith('-}}', i) && isSpace(source[i - 1])) return { tokens, end: i + 3, trimRight: true };
    const c = source[i]!;
    const start = i;
    if (c === '"') {
      let literal = '';
      for (i++; ; i++) {
        const ch = source[i];
        if (ch === undefined) throw fail('has an unterminated string', start);
        if (ch === '"') break;
        if (ch === '\\') {
          const next = source[i + 1];
          if (next !== '"' && next !== '\\') throw fail(`has an unsupported escape \\${next ?? ''} (only \\" and \\\\)`, i);
          literal += next;
          i++;
        } else {
          literal += ch;
        }
      }
      i++;
      tokens.push({ literal, at: start });
    } else if (c === '.') {
      FIELD.lastIndex = i;
      const m = FIELD.exec(source);
      if (m === null) throw fail('has a "." that is not followed by a field name', start);
      i = FIELD.lastIndex;
      tokens.push({ field: m[1]!, at: start });
    } else {
      IDENT.lastIndex = i;
      const m = IDENT.exec(source);
      if (m === null) throw fail(`has an unexpected character ${JSON.stringify(c)}`, start);
      i = IDENT.lastIndex;
      tokens.push({ ident: m[0], at: start });
    }
    const after = source[i];
    if (after !== undefined && !isSpace(after) && !source.startsWith('}}', i)) {
      throw fail(`has an unexpected character ${JSON.stringify(after)}`, i);
    }
  }
}

/** `.Name` or `.Name.sub`: captures the name without the leading dot. */
const FIELD = /\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)/y;
const IDENT = /[A-Za-z_]\w*/y;

/** `Name` is allowed when listed; `Prefix.name` also when `Prefix.*` is listed. */
function fieldAllowed(field: string, allowed: readonly string[]): boolean {
  if (allowed.includes(field)) return true;
  const dot = field.lastIndexOf('.');
  return dot > 0 && allowed.includes(`${field.slice(0, dot)}.*`);
}

function pushText(parts: Part[], text: string): void {
  if (text.length > 0) parts.push(text);
}

/** Go templates trim ASCII white space: space, tab, carriage return, newline. */
function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

function trimStart(text: string): string {
  let i = 0;
  while (isSpace(text[i])) i++;
  return text.slice(i);
}

function trimEnd(text: string): string {
  let i = text.length;
  while (i > 0 && isSpace(text[i - 1])) i--;
  return text.slice(0, i);
}
