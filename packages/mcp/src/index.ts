/**
 * @proxy/mcp: a default-deny tool policy for Streamable HTTP MCP servers, run by the app after
 * the transform pipeline (the top-level `mcp` block of the config).
 */
import { mcpPolicy } from './mcp-policy.js';

export { mcpPolicy };
export { MCP_STAGE_NAME } from './mcp-policy.js';
export { mcpSchema } from './config.js';
export type { McpArgumentMatcher, McpConfig, McpServerConfig, McpToolConfig } from './config.js';
export { mcpConfigProblems } from './tool-policy.js';
export { parseJsonRpc } from './json-rpc.js';
export type { JsonRpcBody, JsonRpcId, JsonRpcMessage } from './json-rpc.js';
export default mcpPolicy;
