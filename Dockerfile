# The proxy as a container image: built from this repository, run as an unprivileged user, with
# its config and interception CA mounted from outside.
#
#   docker build -t egress-proxy .
#   docker run -v "$PWD/proxy.yaml:/etc/proxy/proxy.yaml:ro" -v "$PWD/certs:/certs" egress-proxy
#
# Mounts: /etc/proxy/proxy.yaml (the config; relative paths in it resolve against /etc/proxy),
# and the CA wherever the config's tls.ca_cert / tls.ca_key point (/certs in the compose
# example). The health check asks the metrics listener's /healthz (metrics.listen, :9090 by
# default): give the config a metrics section, or set PROXY_HEALTH_URL to another /healthz
# (the management listener also serves one).

ARG NODE_IMAGE=node:24-bookworm-slim

# Build: install the workspace, build it, and keep only the app with its production dependencies
# (deployed from the workspace lockfile, so nothing is resolved again).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
RUN corepack enable
COPY . .
RUN pnpm install --frozen-lockfile \
 && pnpm build \
 && pnpm --filter @proxy/app deploy --prod --config.inject-workspace-packages=true /opt/proxy

# Run: the Node.js runtime and the deployed app, nothing else from the build.
FROM ${NODE_IMAGE}
COPY --from=build /opt/proxy /opt/proxy
RUN ln -s /opt/proxy/dist/cli.js /usr/local/bin/proxy \
 && chmod 0755 /opt/proxy/dist/cli.js \
 && mkdir -p /etc/proxy /certs \
 && chown node:node /certs
# The image's own user (uid 1000). Ports below 1024 (:53, :80, :443) need
# net.ipv4.ip_unprivileged_port_start=0 (see the compose example) or CAP_NET_BIND_SERVICE.
USER node
WORKDIR /etc/proxy
ENV NODE_ENV=production \
    PROXY_HEALTH_URL=http://127.0.0.1:9090/healthz
VOLUME ["/certs"]
EXPOSE 53/udp 53/tcp 80 443 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/bin/sh", "-c", "exec proxy health --url \"$PROXY_HEALTH_URL\""]
ENTRYPOINT ["proxy"]
CMD ["--config", "/etc/proxy/proxy.yaml"]
