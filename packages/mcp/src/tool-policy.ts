import { compileRules, type RuleSet, type RuleTarget } from '@proxy/core';
import { compileArgumentMatcher, re2Problem, type ArgumentPredicate } from './argument-matcher.js';
import type { McpConfig, McpServerConfig } from './config.js';

/** Why a message was denied, as the audit record says it. */
export type DenyReason = 'tool_not_allowed' | 'argument_constraint' | 'oversize_body' | 'malformed_jsonrpc';

/** The verdict on one `tools/call`. */
export type CallVerdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: DenyReason };

/** One server's compiled policy. */
export class ServerPolicy {
  readonly name: string;
  readonly rules: RuleSet;
  /** Allowed tool names, each with the matcher sets of its entries (any entry passing allows the call). */
  readonly #tools: ReadonlyMap<string, readonly (readonly ArgumentPredicate[])[]>;

  constructor(config: McpServerConfig) {
    this.name = config.name;
    this.rules = compileRules(config.rules);
    const tools = new Map<string, ArgumentPredicate[][]>();
    for (const tool of config.tools) {
      const entries = tools.get(tool.name) ?? [];
      entries.push(tool.when.map(compileArgumentMatcher));
      tools.set(tool.name, entries);
    }
    this.#tools = tools;
  }

  /** True when `name` is an allowed tool (whatever its arguments): what `tools/list` may show. */
  listsTool(name: string): boolean {
    return this.#tools.has(name);
  }

  /** The verdict on a `tools/call` with these `params`. */
  decideCall(params: unknown): CallVerdict {
    if (typeof params !== 'object' || params === null || Array.isArray(params)) return { allowed: false, reason: 'malformed_jsonrpc' };
    const { name, arguments: args } = params as { name?: unknown; arguments?: unknown };
    if (typeof name !== 'string' || name === '') return { allowed: false, reason: 'malformed_jsonrpc' };
    const entries = this.#tools.get(name);
    if (entries === undefined) return { allowed: false, reason: 'tool_not_allowed' };
    const passes = entries.some((matchers) => matchers.every((matches) => matches(args ?? {})));
    return passes ? { allowed: true } : { allowed: false, reason: 'argument_constraint' };
  }
}

/** Every server's policy, in config order: a request is governed by the first whose rules match. */
export class ToolPolicy {
  readonly #servers: readonly ServerPolicy[];
  readonly error: McpConfig['error'];

  constructor(config: McpConfig) {
    this.#servers = config.servers.map((server) => new ServerPolicy(server));
    this.error = config.error;
  }

  /** The policy of the server `target` reaches, or undefined when no server's rules match it. */
  serverFor(target: RuleTarget): ServerPolicy | undefined {
    return this.#servers.find((server) => server.rules.matches(target));
  }
}

/**
 * Problems of an `mcp` block the schema cannot see, each with its field path below `mcp`
 * (`['servers', 0, 'tools', 1, 'when', 0, 'matches']`): regular expressions RE2 refuses.
 */
export function mcpConfigProblems(config: McpConfig): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  config.servers.forEach((server, s) =>
    server.tools.forEach((tool, t) =>
      tool.when.forEach((matcher, w) => {
        if (matcher.matches === undefined) return;
        const problem = re2Problem(matcher.matches);
        if (problem !== undefined) problems.push({ path: ['servers', s, 'tools', t, 'when', w, 'matches'], message: `not an RE2 regular expression: ${problem}` });
      }),
    ),
  );
  return problems;
}
