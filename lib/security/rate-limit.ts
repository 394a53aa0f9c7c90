import { db } from "../db";
import type { HeaderSource } from "../http/plain";

/**
 * Fixed-window rate limits kept in PostgreSQL, so every instance behind a load balancer
 * counts against the same budget. An instance claims permits from the shared count in
 * leases (a twentieth of the limit, at most 1,000, at least 1) and spends them locally, so a
 * busy token costs one upsert per lease instead of one per call; the next lease is claimed
 * when half of one is spent. Permits are claimed before
 * they are spent: across any number of instances no more than `limit` calls pass in a
 * window. A lease an instance does not use up is lost with the window, which errs strict.
 */

export interface RateDecision {
  ok: boolean;
  /** Seconds until the window resets. */
  retryAfter: number;
  limit: number;
  /**
   * Calls left in this window as this instance knows it: the limit less the shared count,
   * plus this instance's unspent permits. Other instances' unspent leases count as spent,
   * so it errs low, never high.
   */
  remaining: number;
}

interface Lease {
  windowStart: number;
  permits: number;
  /** The shared count reached the limit: refuse until the window ends, without asking again. */
  exhausted: boolean;
  /** The shared count at the last claim (permits handed out to every instance). */
  count: number;
}

/** By key and window. */
const leases = new Map<string, Lease>();
const claiming = new Map<string, Promise<void>>();

export const leaseSize = (limit: number) => Math.max(1, Math.min(1000, Math.floor(limit / 20)));

async function claim(slot: string, key: string, limit: number, windowStart: number): Promise<void> {
  const size = leaseSize(limit);
  const [row] = await db.$queryRaw<{ count: number }[]>`
    INSERT INTO "RateLimitBucket" (key, "windowStart", count) VALUES (${key}, ${new Date(windowStart)}, ${size})
    ON CONFLICT (key, "windowStart") DO UPDATE SET count = "RateLimitBucket".count + ${size}
    RETURNING count`;
  const count = row?.count ?? Number.POSITIVE_INFINITY;
  const lease = leases.get(slot) ?? { windowStart, permits: 0, exhausted: false, count: 0 };
  lease.count = Math.max(lease.count, count);
  // The permits of this lease that fit under the limit: all of them, some, or none.
  lease.permits += Math.max(0, Math.min(size, limit - (count - size)));
  if (count >= limit) lease.exhausted = true;
  if (leases.size >= 10_000) for (const [k, l] of leases) if (l.windowStart < windowStart) leases.delete(k);
  leases.set(slot, lease);
}

export async function rateLimit(key: string, limit: number, windowSeconds = 60, now = Date.now()): Promise<RateDecision> {
  const windowStart = Math.floor(now / (windowSeconds * 1000)) * windowSeconds * 1000;
  const retryAfter = Math.max(1, Math.ceil((windowStart + windowSeconds * 1000 - now) / 1000));
  const slot = `${key}@${windowStart}`;
  for (;;) {
    const lease = leases.get(slot);
    if (lease && lease.permits > 0) {
      lease.permits -= 1;
      // Half spent: the next lease is claimed now, so busy callers do not wait for the write.
      if (lease.permits < leaseSize(limit) / 2 && !lease.exhausted && !claiming.has(slot)) void claimOnce(slot, key, limit, windowStart).catch(() => undefined);
      return { ok: true, retryAfter, limit, remaining: Math.max(0, Math.min(limit, limit - lease.count + lease.permits)) };
    }
    if (lease?.exhausted) return { ok: false, retryAfter, limit, remaining: 0 };
    await claimOnce(slot, key, limit, windowStart);
  }
}

/** One claim at a time per key and window in this process; callers arriving meanwhile wait for it. */
function claimOnce(slot: string, key: string, limit: number, windowStart: number): Promise<void> {
  let pending = claiming.get(slot);
  if (!pending) {
    pending = claim(slot, key, limit, windowStart).finally(() => claiming.delete(slot));
    claiming.set(slot, pending);
  }
  return pending;
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
export function limitAddress(headers: HeaderSource): string {
  const hops =
    headers
      .get("x-forwarded-for")
      ?.split(",")
      .map((s) => s.trim())
      .filter(Boolean) ?? [];
  return hops.at(-1) ?? "unknown";
}
