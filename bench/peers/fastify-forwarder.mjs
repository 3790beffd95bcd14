// The "bare framework" peer of the reverse case: Fastify + @fastify/http-proxy with default
// settings, forwarding every request to one upstream. Usage: node fastify-forwarder.mjs PORT UPSTREAM
import { loadDependency } from '../lib/dependencies.mjs';

const { default: Fastify } = await loadDependency('fastify');
const { default: httpProxy } = await loadDependency('@fastify/http-proxy');

const [port, upstream] = process.argv.slice(2);
const app = Fastify({ logger: false });
await app.register(httpProxy, { upstream });
await app.listen({ host: '127.0.0.1', port: Number(port) });
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => void app.close().then(() => process.exit(0)));
