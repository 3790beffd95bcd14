/**
 * `annotate`: copies the values of chosen request headers into the audit record, as
 * `header:<Canonical-Name>` annotations, on requests matching each group's rules. It records
 * exactly what the operator asked for and never changes or refuses a request.
 */
import { CONTINUE, canonicalHeaderName, compileRules, defineTransform, rulesSchema, type RuleConfig, type RuleSet, type TransformDefinition, type WithDefaults } from '@proxy/core';

/** One annotation group: which requests, which headers. */
export interface AnnotationGroupConfig {
  /** Requests this group applies to (at least one rule; `host: "*"` for every request). */
  readonly rules: readonly RuleConfig[];
  /** Header names (case-insensitive) whose values are recorded. */
  readonly headers: readonly string[];
}

/** The `config` block of an `annotate` transform, after schema defaults. */
export interface AnnotateConfig {
  readonly annotations: readonly AnnotationGroupConfig[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type AnnotateInput = WithDefaults<AnnotateConfig, 'annotations'>;

/** An HTTP header field name (RFC 9110 token). */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

const annotateSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    annotations: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        // iron-proxy refuses a group with no rules: a group names the requests it annotates.
        required: ['rules', 'headers'],
        properties: {
          rules: { ...rulesSchema, minItems: 1 },
          headers: { type: 'array', minItems: 1, items: { type: 'string', pattern: HEADER_NAME } },
        },
      },
    },
  },
};

/** One header to capture: where to read it and the annotation key it is written under. */
interface CapturedHeader {
  readonly name: string;
  readonly key: string;
}

interface CompiledGroup {
  /** Undefined when the group applies to every request. */
  readonly scope: RuleSet;
  readonly headers: readonly CapturedHeader[];
}

/** The `annotate` transform definition. */
export const annotateTransform: TransformDefinition<AnnotateConfig, AnnotateInput> = defineTransform<AnnotateConfig, AnnotateInput>({
  name: 'annotate',
  schema: annotateSchema,
  create(config) {
    const groups: CompiledGroup[] = config.annotations.map((group) => ({
      scope: compileRules(group.rules),
      headers: group.headers.map((name) => ({ name, key: `header:${canonicalHeaderName(name)}` })),
    }));
    return {
      onRequest(request, trace) {
        for (const group of groups) {
          if (!group.scope.matches(request)) continue;
          for (const header of group.headers) {
            const values = request.headers.getAll(header.name);
            if (values.length > 0) trace.annotate(header.key, values.join(', '));
          }
        }
        return CONTINUE;
      },
    };
  },
});

export default annotateTransform;
