/**
 * This process's own Prometheus metrics (prom-client): the default process and Node.js
 * metrics, HTTP request durations by route, and the latencies this process observes. Every
 * series here is per instance, so a scraper may sum them across instances. Figures read
 * from the database (requests by state, queue depth, the audit chain) are the same whichever
 * instance is asked and live apart, in lib/observability/cluster-metrics.ts.
 */
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";

/**
 * One registry and one set of metrics per process, kept on globalThis: Next.js may load this
 * module more than once in a process (each bundle its own copy), and a metric observed in one
 * copy must show in the registry /api/metrics reads, whichever copy that route has.
 */
function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const httpDuration = new Histogram({
    name: "latchkey_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by route (the API operation, server action or listener path), method and status.",
    labelNames: ["route", "method", "status"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  const revocationLatency = new Histogram({
    name: "latchkey_revocation_latency_seconds",
    help: "Time from a grant's end to its outside system being cleaned up, as this instance's worker saw it.",
    labelNames: ["workflow"] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  });

  const approvalLatency = new Histogram({
    name: "latchkey_decision_latency_seconds",
    help: "Time from a request to a person's decision on it, observed by the instance that recorded the decision.",
    labelNames: ["decision"] as const,
    buckets: [60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600],
    registers: [registry],
  });

  const poolWait = new Histogram({
    name: "latchkey_db_pool_wait_seconds",
    help: "Time a call waited for a database connection because every connection of this process's pool was in use (calls that found one free, or had one opened for them, are not counted).",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });
  return { registry, httpDuration, revocationLatency, approvalLatency, poolWait };
}

const globalForMetrics = globalThis as unknown as { latchkeyMetrics?: ReturnType<typeof createMetrics> };
const metrics = (globalForMetrics.latchkeyMetrics ??= createMetrics());
const registry = metrics.registry;
export const { httpDuration, revocationLatency, approvalLatency, poolWait } = metrics;

/** Times `work` into the HTTP histogram; `status` reads the outcome once it is known. */
export async function timed<T>(route: string, method: string, work: () => Promise<T>, status: (result: T) => number): Promise<T> {
  const end = httpDuration.startTimer({ route, method });
  try {
    const result = await work();
    end({ status: String(status(result)) });
    return result;
  } catch (error) {
    end({ status: "500" });
    throw error;
  }
}

export const instanceMetricsContentType = registry.contentType;

export function instanceMetricsText(): Promise<string> {
  return registry.metrics();
}
