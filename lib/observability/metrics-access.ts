/**
 * Who may read metrics: a scraper sending `Authorization: Bearer <LATCHKEY_METRICS_TOKEN>`.
 * One check for the portal's routes and the worker's and authorization listener's own
 * /metrics, compared by digest so the time taken does not depend on the token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { env } from "../env";
import { bearerToken } from "../http/plain";

const digest = (v: string) => createHash("sha256").update(v).digest();

/** Null when the caller may read metrics; otherwise the status and the reason. */
export function metricsRefusal(authorization: string | null | undefined): { status: 401 | 403; message: string } | null {
  const expected = env().LATCHKEY_METRICS_TOKEN;
  if (!expected) return { status: 403, message: "Metrics are off: set LATCHKEY_METRICS_TOKEN and give it to the scraper." };
  const given = bearerToken(authorization);
  if (!given || !timingSafeEqual(digest(given), digest(expected)))
    return { status: 401, message: "Send the metrics token: Authorization: Bearer <LATCHKEY_METRICS_TOKEN>." };
  return null;
}
