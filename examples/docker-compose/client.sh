#!/bin/sh
# The demo workload: five requests through the proxy, which it reaches through DNS alone.
# It holds placeholders only; the real secrets live in the proxy's environment.
set -u
CA=/certs/ca.crt
step() { printf '\n> %s\n' "$*"; }

step "curl https://httpbin.org/get  (allowed)"
curl -sS --cacert "$CA" https://httpbin.org/get

step "curl https://example.com/  (not in the allowlist: 403)"
curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}\n' https://example.com/

step "curl -H 'Authorization: Bearer proxy-openai-abc123' https://httpbin.org/headers  (swapped in a header)"
curl -sS --cacert "$CA" -H 'Authorization: Bearer proxy-openai-abc123' https://httpbin.org/headers

step "curl -H 'X-Internal: proxy-internal-tok' https://httpbin.org/headers  (any header)"
curl -sS --cacert "$CA" -H 'X-Internal: proxy-internal-tok' https://httpbin.org/headers

step "curl 'https://httpbin.org/get?token=proxy-openai-abc123&q=hello'  (the query)"
curl -sS --cacert "$CA" 'https://httpbin.org/get?token=proxy-openai-abc123&q=hello'
