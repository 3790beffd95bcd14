/**
 * @proxy/mcp: a default-deny tool policy for Streamable HTTP MCP servers, run by the app after
 * the transform pipeline (the top-level `mcp` block of the config), and the MCP gateway that
 * routes the requests it lets through to their upstreams (the `mcp_gateway` block).
 */
import { mcpPolicy } from './mcp-policy.js';

export { mcpPolicy };
export { MCP_STAGE_NAME } from './mcp-policy.js';
export type { McpStageConfig } from './mcp-policy.js';
export { mcpGatewaySchema, mcpGatewayConfigProblems } from './gateway-config.js';
export type { GatewayConfigProblem, McpGatewayConfig, McpGatewayCredentialConfig, McpGatewayInjectConfig, McpGatewayRouteConfig } from './gateway-config.js';
export { mcpSchema } from './config.js';
export type { McpArgumentMatcher, McpConfig, McpServerConfig, McpToolConfig } from './config.js';
export { mcpConfigProblems } from './tool-policy.js';
export { parseJsonRpc } from './json-rpc.js';
export type { JsonRpcBody, JsonRpcId, JsonRpcMessage } from './json-rpc.js';
export default mcpPolicy;
