/**
 * The MCP tool policy as a pipeline stage: the app runs it after every configured transform (as
 * iron-proxy runs its interceptor after the pipeline), so the allowlist has already admitted
 * the destination and `secrets` has already swapped placeholders when it reads a body. A
 * request the policy lets through then takes its `mcp_gateway` route, if one matches.
 */
import {
  CONTINUE,
  defineTransform,
  reject,
  type AnnotationValue,
  type Decision,
  type JsonSchema,
  type ProxyRequest,
  type RetargetDecision,
  type ProxyResponse,
  type Trace,
  type TransformDefinition,
} from '@proxy/core';
import { mcpSchema, type McpConfig } from './config.js';
import { McpGateway, type GatewayRecord, type GatewayRoute } from './gateway.js';
import { mcpGatewaySchema, type McpGatewayConfig } from './gateway-config.js';
import { errorResponse, idKey, parseJsonRpc, type JsonRpcBody, type JsonRpcMessage } from './json-rpc.js';
import { filterToolsList, serialiseBody, ToolsListEventFilter, type ToolsListOutcome } from './tools-list-filter.js';
import { ToolPolicy, type DenyReason, type ServerPolicy } from './tool-policy.js';

/** The name the stage has in audit records (`request_transforms`, `rejected_by`) and its audit group. */
export const MCP_STAGE_NAME = 'mcp';

/** Longest `arguments` JSON written to the audit record as is; longer ones are cut (`raw_arguments`). */
const MAX_LOGGED_ARGUMENTS = 64;

/** Largest single server-sent event of a filtered response. */
const MAX_EVENT_BYTES = 4 * 1024 * 1024;

/** One JSON-RPC message in the audit record's `mcp` group. */
type MessageRecord = Record<string, AnnotationValue>;

/** What the stage knows about one exchange between its request and its response. */
interface ExchangeState {
  readonly server: ServerPolicy;
  /** Ids of the `tools/list` requests the client sent: only their answers are filtered. */
  readonly listIds: Set<string>;
  /** The audit group, shared by both phases (the record is written when the exchange ends). */
  readonly group: McpGroup;
}

/** The audit record's `mcp` group. */
interface McpGroup {
  server: string;
  messages: MessageRecord[];
  gateway?: GatewayRecord;
  [key: string]: AnnotationValue;
}

/** The stage's config: the top-level `mcp` block, with the top-level `mcp_gateway` block as `gateway`. */
export interface McpStageConfig extends McpConfig {
  readonly gateway?: McpGatewayConfig;
}

const mcpStageSchema: JsonSchema = Object.freeze({
  ...mcpSchema,
  properties: { ...(mcpSchema.properties as Record<string, JsonSchema>), gateway: mcpGatewaySchema },
});

/**
 * The `mcp` stage definition; its config is the top-level `mcp` block plus the `mcp_gateway`
 * block as `gateway`. Its re-targets are the gateway's configured routes (`routesByConfig`).
 */
export const mcpPolicy: TransformDefinition<McpStageConfig> = defineTransform<McpStageConfig>({
  name: MCP_STAGE_NAME,
  schema: mcpStageSchema,
  routesByConfig: true,
  async create(config, env) {
    const policy = new ToolPolicy(config);
    const gateway = config.gateway === undefined ? undefined : await McpGateway.open(config.gateway, env.secrets);
    const exchanges = new WeakMap<ProxyRequest, ExchangeState>();
    return {
      onRequest: (request, trace) => {
        const server = policy.serverFor(request);
        if (server === undefined) return CONTINUE;
        const route = gateway?.routeFor(request);
        const group: McpGroup = { server: server.name, messages: [] };
        // GET (the server's event stream) and DELETE (session end) carry no JSON-RPC call.
        if (request.method !== 'POST') {
          if (route === undefined) return CONTINUE;
          trace.group(MCP_STAGE_NAME, group);
          return route.apply(request, group);
        }
        const state: ExchangeState = { server, listIds: new Set(), group };
        trace.group(MCP_STAGE_NAME, group);
        exchanges.set(request, state);
        // Compressed answers could not be filtered: ask the server for identity encoding.
        request.headers.set('Accept-Encoding', 'identity');
        const decided = inspectRequest(policy, state, request, trace);
        return route === undefined ? decided : decided.then((decision) => routeAllowed(decision, route, request, group));
      },
      onResponse: (request, response, trace) => {
        const state = exchanges.get(request);
        if (state === undefined || state.listIds.size === 0) return CONTINUE;
        return filterResponse(state, response, trace);
      },
    };
  },
});

/** Sends a request the policy let through on its gateway route; a refusal stays a refusal. */
function routeAllowed(decision: Decision, route: GatewayRoute, request: ProxyRequest, group: McpGroup): Decision | RetargetDecision {
  return decision.action === 'continue' ? route.apply(request, group) : decision;
}

/** Reads the body of a POST to a governed server and decides on every message in it. */
async function inspectRequest(policy: ToolPolicy, state: ExchangeState, request: ProxyRequest, trace: Trace): Promise<Decision> {
  let text: string;
  try {
    text = (await request.body.read()).toString('utf8');
  } catch {
    // Over the body limit (a truncated body cannot be inspected) or unreadable: never forwarded.
    return deny(policy, state, trace, undefined, 'oversize_body');
  }
  // Whatever its Content-Type: a body the server would read as JSON-RPC is inspected as such.
  const body = parseJsonRpc(text);
  if (body === undefined) return deny(policy, state, trace, undefined, 'malformed_jsonrpc');
  let denied: DenyReason | undefined;
  for (const message of body.messages) {
    const record = recordOf(message);
    state.group.messages.push(record);
    if (message.kind === 'request' && message.method === 'tools/list') state.listIds.add(idKey(message.id));
    if (message.method !== 'tools/call') {
      record.decision = 'allow';
      continue;
    }
    const verdict = state.server.decideCall(message.params);
    record.decision = verdict.allowed ? 'allow' : 'deny';
    if (!verdict.allowed) {
      record.reason = verdict.reason;
      denied ??= verdict.reason;
    }
  }
  return denied === undefined ? CONTINUE : deny(policy, state, trace, body, denied);
}

/**
 * Refuses the request with the configured JSON-RPC error (HTTP 200, as an MCP client expects):
 * one error per request of the body, with its id (a batch gets an array), or one with a null
 * id when the body could not be read as JSON-RPC.
 */
function deny(policy: ToolPolicy, state: ExchangeState, trace: Trace, body: JsonRpcBody | undefined, reason: DenyReason): Decision {
  const { code, message } = policy.error;
  if (body === undefined) state.group.messages.push({ direction: 'request', decision: 'deny', reason });
  trace.annotate('reason', reason);
  const ids = body?.messages.filter((m) => m.kind === 'request').map((m) => m.id ?? null) ?? [];
  const errors = (ids.length === 0 ? [null] : ids).map((id) => errorResponse(id, code, message));
  const payload = body?.batch === true ? errors : errors[0];
  return reject(200, reason, JSON.stringify(payload), 'application/json');
}

/** The audit entry of one client message. */
function recordOf(message: JsonRpcMessage): MessageRecord {
  const record: MessageRecord = { direction: 'request', type: message.kind };
  if (message.method !== undefined) record.method = message.method;
  if (message.method === 'tools/call' && typeof message.params === 'object' && message.params !== null) {
    const { name, arguments: args } = message.params as { name?: unknown; arguments?: unknown };
    if (typeof name === 'string') record.tool = name;
    if (args !== undefined) {
      const json = JSON.stringify(args);
      if (json.length <= MAX_LOGGED_ARGUMENTS) record.arguments = args as AnnotationValue;
      else record.raw_arguments = `${truncateUtf8(json, MAX_LOGGED_ARGUMENTS - 3)}...`;
    }
  }
  return record;
}

/** Filters the `tools/list` answers of the exchange: a JSON body at once, an event stream event by event. */
async function filterResponse(state: ExchangeState, response: ProxyResponse, trace: Trace): Promise<Decision> {
  const record = (outcome: ToolsListOutcome): void => {
    state.group.messages.push({ direction: 'response', type: 'response', method: 'tools/list', decision: outcome.filtered > 0 ? 'filtered' : 'allow', filtered: outcome.filtered });
  };
  const encoding = response.headers.get('content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    // The server compressed its answer although asked not to: it cannot be filtered, so it is not passed on.
    trace.annotate('reason', 'encoded_response');
    return reject(502, 'mcp_unfilterable_response', 'the MCP server answered with an encoding the proxy cannot filter\n');
  }
  const type = mediaType(response.headers.get('content-type'));
  if (type === 'text/event-stream') {
    response.body.replaceStream(
      response.body.stream().pipe(new ToolsListEventFilter({ listIds: state.listIds, visible: (name) => state.server.listsTool(name), onOutcome: record, maxEventBytes: MAX_EVENT_BYTES })),
    );
    return CONTINUE;
  }
  if (!response.body.present) return CONTINUE;
  const body = parseJsonRpc((await response.body.read()).toString('utf8'));
  // Not JSON-RPC: no client can take a tool list from it.
  if (body === undefined) return CONTINUE;
  const { changed, outcomes } = filterToolsList(body, state.listIds, (name) => state.server.listsTool(name));
  for (const outcome of outcomes) record(outcome);
  if (changed) response.body.replace(serialiseBody(body));
  return CONTINUE;
}

/** The lowercase media type of a Content-Type value, without parameters. */
function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** `text` cut to at most `maxBytes` UTF-8 bytes, never inside a character. */
function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
