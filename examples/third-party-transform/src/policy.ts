import { ErrorCodes, ProxyError } from '@proxy/core';
import type { HeaderList } from '@proxy/core';
import type { RequestGuardConfig } from './config.js';

/** Why a request breaks the policy: the audit reason and what to annotate it with. */
export type Violation =
  | { readonly reason: 'header_missing'; readonly header: string }
  | { readonly reason: 'user_agent_denied'; readonly pattern: string };

/** The header checks of a guard, compiled once in `create()`. */
export interface HeaderPolicy {
  /** The first check the headers fail (required headers first), or undefined when they pass. */
  check(headers: HeaderList): Violation | undefined;
}

/**
 * Compiles the checks of a validated config. A pattern that is not a valid regular
 * expression throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) naming the field, so the
 * proxy refuses to start (or to reload) with it.
 */
export function compileHeaderPolicy(config: RequestGuardConfig): HeaderPolicy {
  const required = config.require_headers ?? [];
  const denied = (config.deny_user_agents ?? []).map((source, i) => ({ source, regex: compilePattern(source, i) }));
  return {
    check(headers) {
      for (const header of required) {
        if (!headers.getAll(header).some((value) => value.trim() !== '')) return { reason: 'header_missing', header };
      }
      for (const userAgent of headers.getAll('user-agent')) {
        const hit = denied.find(({ regex }) => regex.test(userAgent));
        if (hit !== undefined) return { reason: 'user_agent_denied', pattern: hit.source };
      }
      return undefined;
    },
  };
}

function compilePattern(source: string, index: number): RegExp {
  try {
    return new RegExp(source, 'i');
  } catch (err) {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `deny_user_agents[${index}]: not a valid regular expression`, { cause: err });
  }
}
