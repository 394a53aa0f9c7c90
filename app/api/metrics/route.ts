import { plainText } from "@/lib/http/plain";
import { metricsRefusal } from "@/lib/observability/metrics-access";
import { instanceMetricsContentType, instanceMetricsText } from "@/lib/observability/metrics";

export const dynamic = "force-dynamic";

/** This instance's own Prometheus metrics (process, HTTP, latencies), for a scraper holding LATCHKEY_METRICS_TOKEN. */
export async function GET(request: Request): Promise<Response> {
  const refusal = metricsRefusal(request.headers.get("authorization"));
  if (refusal) return plainText(refusal.status, refusal.message);
  return new Response(await instanceMetricsText(), { headers: { "content-type": instanceMetricsContentType, "cache-control": "no-store" } });
}
