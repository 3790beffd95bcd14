import { canonicalHeaderName, compileTemplate, setQueryParam, type ProxyRequest } from '@proxy/core';
import type { InjectConfig } from './config.js';
import type { SecretAction } from './secret-action.js';

/** The formatter used when an inject entry names none: the bare value. */
export const DEFAULT_FORMATTER = '{{ .Value }}';

/**
 * Compiles an `inject` block: set a header (with the configured casing, value rendered by the
 * formatter) or set a query parameter, on every request in scope.
 */
export function compileInject(config: InjectConfig): SecretAction {
  if (config.header !== undefined) {
    const header = config.header;
    const formatter = compileTemplate(config.formatter ?? DEFAULT_FORMATTER, ['Value']);
    const locations = [`header:${canonicalHeaderName(header)}`];
    return {
      kind: 'injected',
      required: false,
      apply(request: ProxyRequest, secret: () => string) {
        request.headers.set(header, formatter.render({ Value: secret() }));
        return [...locations];
      },
    };
  }
  const param = config.query_param!;
  const locations = [`query:${param}`];
  return {
    kind: 'injected',
    required: false,
    apply(request: ProxyRequest, secret: () => string) {
      request.query = setQueryParam(request.query, param, secret());
      return [...locations];
    },
  };
}
