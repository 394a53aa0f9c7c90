import { createHash, timingSafeEqual } from "node:crypto";
import { env } from "@/lib/env";
import { plainText } from "@/lib/http/plain";
import { metricsText } from "@/lib/metrics";

export const dynamic = "force-dynamic";

const digest = (v: string) => createHash("sha256").update(v).digest();

/** Prometheus metrics, for a scraper holding LATCHKEY_METRICS_TOKEN (Authorization: Bearer). */
export async function GET(request: Request): Promise<Response> {
  const expected = env().LATCHKEY_METRICS_TOKEN;
  if (!expected) return plainText(403, "Metrics are off: set LATCHKEY_METRICS_TOKEN and give it to the scraper.");
  const given = request.headers.get("authorization")?.match(/^Bearer\s+(\S+)$/i)?.[1];
  if (!given || !timingSafeEqual(digest(given), digest(expected))) return plainText(401, "Send the metrics token: Authorization: Bearer <LATCHKEY_METRICS_TOKEN>.");
  return new Response(await metricsText(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" } });
}
