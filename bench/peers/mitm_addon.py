"""mitmdump addon equivalent to the harness's MITM case: an allowlist of one host and a
placeholder replaced by the real value (from BENCH_REAL_TOKEN) in every request header."""

import os

from mitmproxy import http

ALLOWED = {"localhost"}
PLACEHOLDER = "proxy-bench-token"
REAL = os.environ["BENCH_REAL_TOKEN"]


class AllowAndReplace:
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.pretty_host not in ALLOWED:
            flow.response = http.Response.make(403, b"denied")
            return
        for name, value in flow.request.headers.items(multi=True):
            if PLACEHOLDER in value:
                flow.request.headers[name] = value.replace(PLACEHOLDER, REAL)


addons = [AllowAndReplace()]
