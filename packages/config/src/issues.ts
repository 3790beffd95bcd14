import type { ConfigIssue, JsonSchema } from '@proxy/core';
import type { ErrorObject } from 'ajv';
import { locateNearest } from './document.js';
import type { ConfigDocument, SourcePosition } from './document.js';
import { formatFieldPath, pointerToFieldPath } from './field-path.js';
import type { FieldPath } from './field-path.js';
import { describeFormatProblem } from './formats.js';
import type { SchemaLookup } from './schema-lookup.js';
import { isRecord } from './is-record.js';

/** Where a validated value sits in its document, and how to read the schema it was checked with. */
export interface ValidationScope {
  readonly doc: ConfigDocument;
  /** Field path of the validated value in the document (`[]` for the whole file). */
  readonly base: FieldPath;
  /** The value that was validated (defaults applied), to read offending values from. */
  readonly data: unknown;
  readonly schemaOf: SchemaLookup;
}

/** Issue located at a path of the document (for errors the app finds after validation). */
export function issueAt(doc: ConfigDocument, path: FieldPath, message: string): ConfigIssue {
  return located(doc, path, locateNearest(doc, path), message);
}

/**
 * Turns ajv's errors into one issue per real problem: alternatives that were not meant are
 * dropped (the branch of a `oneOf`/`anyOf` closest to the data is kept, `if` echoes go), and
 * every issue is located at its node (an unknown field at its key, a missing one at its parent).
 */
export function issuesFromAjvErrors(errors: readonly ErrorObject[], scope: ValidationScope): ConfigIssue[] {
  return pruneAlternatives(errors, scope).map((finding) => toIssue(finding, scope));
}

/** Keeps every issue once (same path and message), ordered by where it is in the file. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues
    .filter((issue) => {
      const key = `${issue.path}\u0000${issue.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/** An ajv error that survived pruning, with a message replacing ajv's when one was composed. */
interface Finding {
  readonly error: ErrorObject;
  message?: string;
  dropped: boolean;
}

function pruneAlternatives(errors: readonly ErrorObject[], scope: ValidationScope): Finding[] {
  // `if` failures only explain why `then`/`else` applied; those errors say what is wrong.
  const findings: Finding[] = errors.map((error) => ({ error, dropped: error.keyword === 'if' }));
  findings.forEach((finding, index) => {
    if (finding.error.keyword === 'oneOf' || finding.error.keyword === 'anyOf') {
      resolveAlternatives(finding, findings.slice(0, index), scope);
    }
  });
  const live = findings.filter((f) => !f.dropped);
  return live.filter((f) => !isRedundantDiscriminator(f.error, live) && !isMootByType(f.error, live));
}

/** Value checks (enum, format, ...) on a node whose type is already wrong say nothing more. */
function isMootByType(error: ErrorObject, live: readonly Finding[]): boolean {
  if (error.keyword === 'type' || !VALUE_KEYWORDS.has(error.keyword)) return false;
  return live.some((f) => f.error.keyword === 'type' && f.error.instancePath === error.instancePath);
}

const VALUE_KEYWORDS = new Set(['enum', 'const', 'format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'proxyTemplate']);

/** Decides what a failed `oneOf`/`anyOf` reports, given the findings that came before it. */
function resolveAlternatives(finding: Finding, earlier: readonly Finding[], scope: ValidationScope): void {
  const { error } = finding;
  const prefix = `${error.schemaPath}/`;
  const branches = new Map<number, Finding[]>();
  for (const f of earlier) {
    // Items of one array share schema paths: only errors under this value belong to its branches.
    if (f.dropped || !f.error.schemaPath.startsWith(prefix) || !isWithin(f.error.instancePath, error.instancePath)) continue;
    const index = Number(f.error.schemaPath.slice(prefix.length).split('/')[0]);
    branches.set(index, [...(branches.get(index) ?? []), f]);
  }
  const drop = (fs: Iterable<Finding>): void => {
    for (const f of fs) f.dropped = true;
  };
  const alternatives = scope.schemaOf(error)?.[error.keyword];
  const choice = Array.isArray(alternatives) ? exclusiveFields(alternatives) : undefined;
  if (choice !== undefined) {
    // `oneOf: [{required: [a]}, {required: [b]}]`: "exactly one of these fields".
    const value = valueAt(scope.data, error.instancePath);
    const present = choice.filter((field) => isRecord(value) && value[field] !== undefined);
    drop([...branches.values()].flat());
    finding.message =
      present.length === 0 ? `set one of: ${choice.join(', ')}` : `set only one of: ${choice.join(', ')} (found ${present.join(', ')})`;
    return;
  }
  if (branches.size === 0) {
    finding.message = Array.isArray(error.params.passingSchemas) ? 'matches more than one of the allowed forms' : 'does not match any allowed form';
    return;
  }
  const all = [...branches.values()];
  const shapes = new Set(['type', 'const']);
  if (all.every((b) => b.length === 1 && shapes.has(b[0]?.error.keyword ?? '') && b[0]?.error.instancePath === error.instancePath)) {
    // `anyOf: [{type: string}, {type: array}]` given a number: one "must be a string or a list";
    // `anyOf: [{type: integer}, {const: auto}]` given a word: one 'must be an integer or "auto"'.
    drop(all.flat());
    const expected = all.map(([f]) => (f?.error.keyword === 'const' ? JSON.stringify(f.error.params.allowedValue) : typeNames(f?.error.params.type)));
    finding.message = `must be ${expected.join(' or ')}${gotSuffix(valueAt(scope.data, error.instancePath))}`;
    return;
  }
  const best = all.reduce((a, b) => (branchScore(b, error.instancePath) < branchScore(a, error.instancePath) ? b : a));
  drop(all.filter((b) => b !== best).flat());
  finding.dropped = true;
}

/** True when `pointer` is `base` or a value inside it. */
function isWithin(pointer: string, base: string): boolean {
  return pointer === base || pointer.startsWith(`${base}/`);
}

/** Lower is closer: a branch whose shape or discriminating constant does not fit scores worst. */
function branchScore(branch: readonly Finding[], instancePath: string): number {
  const misfit = branch.some(
    (f) => f.error.keyword === 'const' || (f.error.instancePath === instancePath && ['type', 'enum', 'discriminator'].includes(f.error.keyword)),
  );
  return (misfit ? 1_000_000 : 0) + branch.length;
}

/** The field names of alternatives that each only require one field, or undefined. */
function exclusiveFields(alternatives: readonly unknown[]): string[] | undefined {
  const fields: string[] = [];
  for (const alt of alternatives) {
    if (!isRecord(alt) || Object.keys(alt).length !== 1 || !Array.isArray(alt.required) || alt.required.length !== 1) return undefined;
    fields.push(String(alt.required[0]));
  }
  return fields.length > 0 ? fields : undefined;
}

/**
 * A failed `discriminator` when another error already says what is wrong with the tag field
 * (missing, not a string, not one of the listed values).
 */
function isRedundantDiscriminator(error: ErrorObject, live: readonly Finding[]): boolean {
  if (error.keyword !== 'discriminator') return false;
  const tag = String(error.params.tag);
  const tagPointer = `${error.instancePath}/${tag.replace(/~/g, '~0').replace(/\//g, '~1')}`;
  return live.some(
    ({ error: other }) =>
      other.instancePath === tagPointer ||
      (other.keyword === 'required' && other.instancePath === error.instancePath && other.params.missingProperty === tag),
  );
}

function toIssue(finding: Finding, scope: ValidationScope): ConfigIssue {
  const { error } = finding;
  const at = [...scope.base, ...pointerToFieldPath(error.instancePath, scope.data)];
  const value = valueAt(scope.data, error.instancePath);
  const params = error.params as Record<string, unknown>;
  const { doc } = scope;
  if (finding.message !== undefined) return located(doc, at, locateNearest(doc, at), finding.message);
  switch (error.keyword) {
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      const path = [...at, field];
      return located(doc, path, doc.locateKey(path) ?? locateNearest(doc, at), unknownFieldMessage(field, scope.schemaOf(error)));
    }
    case 'required':
      return located(doc, [...at, String(params.missingProperty)], locateNearest(doc, at), 'required field is missing');
    case 'dependencies':
    case 'dependentRequired':
      return located(
        doc,
        [...at, String(params.missingProperty)],
        locateNearest(doc, [...at, String(params.property)]),
        `required when "${String(params.property)}" is set (set both or neither)`,
      );
    case 'discriminator': {
      const tag = String(params.tag);
      return located(doc, [...at, tag], locateNearest(doc, [...at, tag]), discriminatorMessage(error, scope.schemaOf(error)));
    }
    case 'proxyTemplate':
      return located(doc, at, locateNearest(doc, at), templateMessage(error));
    case 'false schema':
      return located(doc, at, doc.locateKey(at) ?? locateNearest(doc, at), forbiddenFieldMessage(error, scope));
    default:
      return located(doc, at, locateNearest(doc, at), valueMessage(error, value));
  }
}

/**
 * A field a schema forbids (`properties: { field: false }`). Under `if: { required: [a] },
 * then: ...` it is a field that cannot be set together with `a`: the message names `a` and adds
 * the `then` schema's `description`, where a schema explains what each of the two does.
 */
function forbiddenFieldMessage(error: ErrorObject, scope: ValidationScope): string {
  const match = /^(.*)\/then\/properties\/[^/]+\/false schema$/.exec(error.schemaPath);
  // The schema holding `then` (and its `if`): looked up as the parent of a `then` keyword.
  const { parentSchema: _own, ...rest } = error;
  const conditional = match === null ? undefined : scope.schemaOf({ ...rest, schemaPath: `${match[1]}/then` });
  const trigger = isRecord(conditional?.if) && Array.isArray(conditional.if.required) ? conditional.if.required.map(String) : [];
  if (trigger.length === 0) return 'is not allowed here';
  const hint = isRecord(conditional?.then) && typeof conditional.then.description === 'string' ? ` (${conditional.then.description})` : '';
  return `cannot be used together with ${trigger.map((t) => `"${t}"`).join(', ')}; remove one of them${hint}`;
}

/**
 * Core's template error, with the fields the template may use when it named an unknown one
 * (core lists them in `params.allowed`, the fields named by `keyFields` included).
 */
function templateMessage(error: ErrorObject): string {
  const message = error.message ?? 'is not a valid template';
  const allowed: unknown[] = Array.isArray(error.params.allowed) ? error.params.allowed : [];
  const fields = allowed.map((f) => `.${String(f)}`);
  return /unknown field/.test(message) && fields.length > 0 ? `${message} (allowed: ${fields.join(', ')})` : message;
}

/** The message of an error about the value itself (type, format, range, ...). */
function valueMessage(error: ErrorObject, value: unknown): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type':
      return `must be ${typeNames(params.type)}${gotSuffix(value)}`;
    case 'format':
      return describeFormatProblem(String(params.format), value);
    case 'enum':
      return `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${String(params.comparison)} ${String(params.limit)}${gotSuffix(value)}`;
    case 'minLength':
      return params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long`;
    case 'maxLength':
      return `must be at most ${String(params.limit)} characters long`;
    case 'minItems':
      return `must have at least ${plural(Number(params.limit), 'entry', 'entries')}`;
    case 'maxItems':
      return `must have at most ${plural(Number(params.limit), 'entry', 'entries')}`;
    case 'uniqueItems':
      return `must not repeat entries (entries ${String(params.j)} and ${String(params.i)} are equal)`;
    case 'pattern':
      return `${describeValue(value)} does not match the pattern ${String(params.pattern)}`;
    case 'not':
      return 'is not allowed here';
    default:
      // Custom keywords write their own sentence.
      return error.message ?? `is invalid (${error.keyword})`;
  }
}

function unknownFieldMessage(field: string, schema: JsonSchema | undefined): string {
  const allowed = isRecord(schema?.properties) ? Object.keys(schema.properties) : undefined;
  if (allowed === undefined) return `unknown field "${field}"`;
  return allowed.length === 0 ? `unknown field "${field}" (no fields are allowed here)` : `unknown field "${field}" (allowed: ${allowed.join(', ')})`;
}

function discriminatorMessage(error: ErrorObject, schema: JsonSchema | undefined): string {
  const tag = String(error.params.tag);
  if (error.params.error === 'tag') return `"${tag}" must be a string`;
  const known = Array.isArray(schema?.oneOf)
    ? schema.oneOf.flatMap((alt: unknown) => {
        const property = isRecord(alt) && isRecord(alt.properties) ? alt.properties[tag] : undefined;
        if (!isRecord(property)) return [];
        return property.const !== undefined ? [String(property.const)] : Array.isArray(property.enum) ? property.enum.map(String) : [];
      })
    : [];
  const unknown = `unknown ${tag} ${JSON.stringify(error.params.tagValue)}`;
  return known.length === 0 ? unknown : `${unknown} (available: ${known.join(', ')})`;
}

/** An issue at `path`: in the file at `position`, or at the environment variable that set the value there. */
function located(doc: ConfigDocument, path: FieldPath, position: SourcePosition | undefined, message: string): ConfigIssue {
  const variable = doc.envVariable(path);
  if (variable !== undefined) return { file: `environment variable ${variable}`, path: formatFieldPath(path), message };
  return {
    file: doc.file,
    ...(position === undefined ? {} : { line: position.line, column: position.column }),
    path: formatFieldPath(path),
    message,
  };
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  null: 'null',
};

function typeNames(type: unknown): string {
  const types = Array.isArray(type) ? type.map(String) : String(type).split(',');
  return types.map((t) => TYPE_NAMES[t] ?? t).join(' or ');
}

function gotSuffix(value: unknown): string {
  return value === undefined ? '' : ` (got ${describeValue(value)})`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value !== 'string') return String(value);
  return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}...` : value);
}

/** Offending strings are quoted up to this length, so a pasted blob does not flood the listing. */
const MAX_QUOTED = 80;

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function valueAt(data: unknown, pointer: string): unknown {
  let node = data;
  for (const segment of pointerToFieldPath(pointer, data)) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}
