import { compileRules, CONTINUE, defineTransform, reject } from '@proxy/core';
import { configSchema } from './config.js';
import type { RequestGuardConfig, RequestGuardInput } from './config.js';
import { compileHeaderPolicy } from './policy.js';

/**
 * A request guard: refuses requests whose `User-Agent` matches a denied pattern or that lack
 * a required header, on the destinations its `rules` select. A request that reached the proxy
 * as TLS passthrough (`sni-only`) has no visible headers and is refused as well: the guard
 * fails closed rather than letting through what it cannot inspect.
 */
export const requestGuard = defineTransform<RequestGuardConfig, RequestGuardInput>({
  // Third-party transforms are configured by package name; this must equal package.json's name.
  name: '@acme/proxy-transform-example',
  schema: configSchema,
  create(config, env) {
    const scope = config.rules === undefined ? undefined : compileRules(config.rules);
    const policy = compileHeaderPolicy(config);
    const rejections = env.meter.createCounter('acme.request_guard.rejections', {
      description: 'Requests refused by the request guard, by reason.',
    });
    const refuse = (reason: string, message: string) => {
      rejections.add(1, { reason });
      return reject(config.reject_status, reason, message);
    };

    return {
      onRequest(request, trace) {
        if (scope !== undefined && !scope.matches(request)) return CONTINUE;
        if (request.mode === 'sni-only') {
          return refuse('headers_uninspectable', 'request refused: headers cannot be inspected on a TLS passthrough connection');
        }
        const violation = policy.check(request.headers);
        if (violation === undefined) return CONTINUE;
        if (violation.reason === 'header_missing') {
          trace.annotate('missing_header', violation.header);
          return refuse(violation.reason, `request refused: missing required header ${violation.header}`);
        }
        trace.annotate('user_agent_pattern', violation.pattern);
        return refuse(violation.reason, 'request refused: user agent not allowed');
      },
    };
  },
});
