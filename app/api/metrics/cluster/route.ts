import { plainText } from "@/lib/http/plain";
import { metricsRefusal } from "@/lib/observability/metrics-access";
import { metricsText } from "@/lib/observability/cluster-metrics";

export const dynamic = "force-dynamic";

/** Cluster-wide figures read from the database (the same from every instance): scrape them from one target. */
export async function GET(request: Request): Promise<Response> {
  const refusal = metricsRefusal(request.headers.get("authorization"));
  if (refusal) return plainText(refusal.status, refusal.message);
  return new Response(await metricsText(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" } });
}
