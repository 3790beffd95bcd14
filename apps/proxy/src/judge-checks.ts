/**
 * Load-time checks of `judge` entries that look across the transform list: a judge must run
 * before every transform that puts real credentials into requests (so the LLM provider sees
 * proxy tokens, never real secrets), and judge instance names must be unique (they name the
 * instance in audit records).
 */
import type { ConfigIssue } from '@proxy/core';
import { issueAt, type ConfigDocument, type ProxyConfig } from '@proxy/config';

/**
 * Transforms that put real credentials into requests: `secrets`, `aws_jwt`, `hmac_sign`,
 * `oauth_token`, `aws_auth`, `gcp_auth` and `gcp_id_token`.
 */
export const CREDENTIAL_TRANSFORMS: ReadonlySet<string> = new Set(['secrets', 'aws_jwt', 'hmac_sign', 'oauth_token', 'aws_auth', 'gcp_auth', 'gcp_id_token']);

/** The issues of the config's judge entries: placement after a credential transform, duplicate names. */
export function judgeIssues(document: ConfigDocument, config: ProxyConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const names = new Map<string, number>();
  let credentials: { index: number; name: string } | undefined;
  config.transforms.forEach((entry, index) => {
    if (CREDENTIAL_TRANSFORMS.has(entry.name)) {
      credentials ??= { index, name: entry.name };
      return;
    }
    if (entry.name !== 'judge') return;
    if (credentials !== undefined) {
      issues.push(
        issueAt(
          document,
          ['transforms', index, 'name'],
          `a judge must come before transforms that inject credentials (transforms[${credentials.index}] is ${credentials.name}): ` +
            'the LLM provider would otherwise be sent real secrets; move this judge above it',
        ),
      );
    }
    const name = (entry.config as { name?: unknown }).name;
    if (typeof name !== 'string') return;
    const first = names.get(name);
    if (first === undefined) names.set(name, index);
    else issues.push(issueAt(document, ['transforms', index, 'config', 'name'], `judge name "${name}" is already used by transforms[${first}]; judge names must be unique`));
  });
  return issues;
}
