import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError, ErrorCodes } from '@proxy/core';
import type { ConfigIssue } from '@proxy/core';
import { isAlias, isCollection, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, ParsedNode, YAMLError } from 'yaml';
import type { FieldPath } from './field-path.js';
import { isRecord } from './is-record.js';

/** A 1-based line and column in a config file. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/** A parsed YAML file, before validation: lets the app find third-party transform names first. */
export interface ConfigDocument {
  /** Where the config came from, as errors name it: a file path, an `s3://` URL, a display name. */
  readonly file: string;
  /** The directory relative paths in the config resolve against (the file's, else the working directory). */
  readonly dir: string;
  /** Plain JS value of the document, exactly as written, `IRON_*` overrides included (validation never mutates it). */
  readonly data: unknown;
  /**
   * Line/column (1-based) of the node at a field path, e.g. `['transforms', 2, 'name']`: where
   * a scalar is written; for a block mapping or sequence under a key, where that key is written
   * (the collection itself starts on the next line). Undefined when the path is not in the file.
   */
  locate(path: FieldPath): SourcePosition | undefined;
  /** Line/column of the key of the map entry at `path` (e.g. an unknown field's name). */
  locateKey(path: FieldPath): SourcePosition | undefined;
  /** The `name` of every `transforms[]` entry with its index (whatever else is wrong). */
  transformNames(): { index: number; name: string }[];
  /**
   * The environment variable that set the value at `path` or at one of its parents (an
   * `IRON_*` override), or undefined when that value is as the file wrote it.
   */
  envVariable(path: FieldPath): string | undefined;
}

/** True when the value at `path` is in the file or was set by an environment variable (not a default). */
export function isWritten(doc: ConfigDocument, path: FieldPath): boolean {
  let node: unknown = doc.data;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return false;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node !== undefined;
}

/** Operator-facing wording for the YAML errors whose library message is terse or names library calls. */
const YAML_MESSAGES: Partial<Record<YAMLError['code'], string>> = {
  MULTIPLE_DOCS: 'the file holds more than one YAML document (remove the extra "---" separator)',
  DUPLICATE_KEY: 'duplicate key: each key may appear only once in a mapping',
};

/**
 * Parses config text; `file` names it in errors and relative paths in it resolve against `dir`
 * (default: the working directory). Throws a `ConfigError` (`PROXY_ERR_CONFIG_YAML`) listing
 * every YAML syntax error with its line and column.
 */
export function parseConfigText(text: string, file: string, dir: string = process.cwd()): ConfigDocument {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((error): ConfigIssue => {
      const { line, col } = lines.linePos(error.pos[0]);
      return { file, line, column: col, path: '', message: YAML_MESSAGES[error.code] ?? error.message };
    });
    throw new ConfigError(issues, ErrorCodes.CONFIG_YAML);
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // Only alias expansion can fail here (e.g. an alias bomb past the expansion limit).
    throw new ConfigError([{ file, path: '', message: `cannot expand the document: ${(err as Error).message}` }], ErrorCodes.CONFIG_YAML);
  }
  return new YamlConfigDocument(file, dir, data, doc, lines);
}

/** Reads and parses a config file. Throws `PROXY_ERR_CONFIG_READ` naming the file when unreadable. */
export async function readConfigFile(file: string): Promise<ConfigDocument> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError([{ file, path: '', message: `cannot read the config file (${reason})` }], ErrorCodes.CONFIG_READ);
  }
  return parseConfigText(text, file, dirname(resolve(file)));
}

/** The position of the nearest node at or above `path` that the file contains. */
export function locateNearest(doc: ConfigDocument, path: FieldPath): SourcePosition | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const position = doc.locate(path.slice(0, depth));
    if (position !== undefined) return position;
  }
  return undefined;
}

/** A node found at a field path, with the key it sits under when its parent is a mapping. */
interface FoundNode {
  readonly key?: Node;
  readonly value: Node | null;
}

class YamlConfigDocument implements ConfigDocument {
  constructor(
    readonly file: string,
    readonly dir: string,
    readonly data: unknown,
    private readonly doc: Document.Parsed<ParsedNode>,
    private readonly lines: LineCounter,
  ) {}

  locate(path: FieldPath): SourcePosition | undefined {
    const found = this.find(path);
    if (found === undefined) return undefined;
    const { key, value } = found;
    const underKey = key !== undefined && (value === null || isEmptyScalar(value) || (isCollection(value) && !value.flow));
    return this.position(underKey ? key : value);
  }

  locateKey(path: FieldPath): SourcePosition | undefined {
    const key = this.find(path)?.key;
    return key === undefined ? undefined : this.position(key);
  }

  transformNames(): { index: number; name: string }[] {
    const transforms = isRecord(this.data) ? this.data.transforms : undefined;
    if (!Array.isArray(transforms)) return [];
    return transforms.flatMap((entry: unknown, index) =>
      isRecord(entry) && typeof entry.name === 'string' ? [{ index, name: entry.name }] : [],
    );
  }

  envVariable(): undefined {
    return undefined;
  }

  private find(path: FieldPath): FoundNode | undefined {
    let found: FoundNode = { value: this.doc.contents };
    for (const segment of path) {
      let node = found.value;
      if (isAlias(node)) node = node.resolve(this.doc) ?? null;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        if (pair === undefined) return undefined;
        found = { key: pair.key as Node, value: (pair.value as Node | null) ?? null };
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment];
        if (item === undefined) return undefined;
        found = { value: item as Node | null };
      } else {
        return undefined;
      }
    }
    return found;
  }

  private position(node: Node | null): SourcePosition | undefined {
    const offset = node?.range?.[0];
    if (offset === undefined) return undefined;
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }
}

function isEmptyScalar(node: Node): boolean {
  return isScalar(node) && node.range !== undefined && node.range !== null && node.range[0] === node.range[1];
}
