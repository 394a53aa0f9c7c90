import { db } from "../db";

/**
 * Fixed-window rate limits kept in PostgreSQL, so every instance behind a load balancer
 * counts against the same budget. One upsert per check.
 */

export interface RateDecision {
  ok: boolean;
  /** Seconds until the window resets. */
  retryAfter: number;
}

export async function rateLimit(key: string, limit: number, windowSeconds = 60, now = Date.now()): Promise<RateDecision> {
  const windowStart = new Date(Math.floor(now / (windowSeconds * 1000)) * windowSeconds * 1000);
  const [row] = await db.$queryRaw<{ count: number }[]>`
    INSERT INTO "RateLimitBucket" (key, "windowStart", count) VALUES (${key}, ${windowStart}, 1)
    ON CONFLICT (key, "windowStart") DO UPDATE SET count = "RateLimitBucket".count + 1
    RETURNING count`;
  const retryAfter = Math.max(1, Math.ceil((windowStart.getTime() + windowSeconds * 1000 - now) / 1000));
  return { ok: (row?.count ?? 0) <= limit, retryAfter };
}

/** Forgets windows that ended more than an hour ago (the worker's sweep calls this). */
export async function pruneRateLimits(now = new Date()): Promise<number> {
  return db.rateLimitBucket.deleteMany({ where: { windowStart: { lt: new Date(now.getTime() - 3_600_000) } } }).then((r) => r.count);
}

/**
 * The address a rate limit counts against: the last X-Forwarded-For entry, the one the
 * proxy nearest to Latchkey added (a client can write the others). Without a proxy in front
 * Next.js fills it with the socket's address.
 */
export function limitAddress(headers: Headers): string {
  const hops = headers.get("x-forwarded-for")?.split(",").map((s) => s.trim()).filter(Boolean) ?? [];
  return hops.at(-1) ?? "unknown";
}
