/**
 * `proxy health`: one GET of the proxy's health endpoint, for container health checks and exec
 * probes on images without curl. Exit 0 on a 2xx answer, 1 otherwise (with the reason on
 * stderr).
 */

/** Where the metrics listener serves `/healthz` by default (`metrics.listen` `:9090`). */
export const DEFAULT_HEALTH_URL = 'http://127.0.0.1:9090/healthz';

/** How long the check waits for the answer. */
export const HEALTH_TIMEOUT_MS = 3_000;

/** The outcome of one check: its exit code and the line to print. */
export interface HealthResult {
  readonly code: 0 | 1;
  readonly line: string;
}

/** GETs `url` once, waiting at most `timeoutMs`. Never throws. */
export async function checkHealth(url: string, timeoutMs: number = HEALTH_TIMEOUT_MS): Promise<HealthResult> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await response.body?.cancel();
    if (response.status >= 200 && response.status < 300) return { code: 0, line: `${url}: ${response.status}` };
    return { code: 1, line: `${url}: unhealthy (status ${response.status})` };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
    return { code: 1, line: `${url}: unreachable (${cause})` };
  }
}
