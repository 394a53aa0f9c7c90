import { NextRequest } from "next/server";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let newToken: () => Promise<string>;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_RATE_LIMIT_TOKEN: "5", LATCHKEY_RATE_LIMIT_ADDRESS: "40", LATCHKEY_RATE_LIMIT_SIGNIN: "3" });
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  newToken = async () => (await createPersonalToken(alice, { name: "rl", scopes: ["requests:read"], expiresInDays: 1 })).secret;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

/**
 * The limits count in fixed one-minute windows of the clock. A test that spends a budget
 * call by call starts with at least `ms` of its window left, so the window cannot turn over
 * in the middle and hand it a fresh budget (which once made the per-address case see no
 * refusal at all).
 */
async function withWindowLeft(ms: number) {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < ms) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

const call = (token: string, address: string) =>
  fetch(`${api.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}`, "x-forwarded-for": `203.0.113.50, ${address}` } });

describe("rate limits", () => {
  it("per token: the sixth call in a minute is refused with 429 and Retry-After; another token is not", async () => {
    await withWindowLeft(20_000);
    const token = await newToken();
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(token, "198.51.100.1");
      expect(r.status).toBe(200);
      expect(r.headers.get("ratelimit-limit")).toBe("5");
      expect(Number(r.headers.get("ratelimit-reset"))).toBeGreaterThan(0);
      expect(Number(r.headers.get("ratelimit-reset"))).toBeLessThanOrEqual(60);
      remaining.push(r.headers.get("ratelimit-remaining")!);
    }
    // Each call spends one of the token's budget, and the headers say so.
    expect(remaining).toEqual(["4", "3", "2", "1", "0"]);
    const refused = await call(token, "198.51.100.1");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/Too many requests from this token/);
    expect((await call(await newToken(), "198.51.100.1")).status).toBe(200);
  });

  it("per address: many tokens from one address share its budget, counted by the nearest proxy's hop", async () => {
    await withWindowLeft(30_000);
    let refusedAt = 0;
    for (let n = 0; n < 10 && !refusedAt; n++) {
      const token = await newToken();
      for (let i = 0; i < 5; i++) {
        const r = await call(token, "198.51.100.2");
        if (r.status === 429) {
          refusedAt = n * 5 + i + 1;
          expect(((await r.json()) as { detail: string }).detail).toMatch(/this address/);
          break;
        }
      }
    }
    expect(refusedAt).toBe(41);
    // The client-written first hop does not matter; another proxy-seen address has its own budget.
    expect((await call(await newToken(), "198.51.100.3")).status).toBe(200);
  });

  it("sign-in attempts per address", async () => {
    const { GET } = await import("@/app/api/auth/[...nextauth]/route");
    const attempt = async () => {
      const request = new NextRequest("http://localhost:3999/api/auth/signin/oidc", { headers: { "x-forwarded-for": "192.0.2.77" } });
      try {
        return (await GET(request, { params: Promise.resolve({ nextauth: ["signin", "oidc"] }) })).status;
      } catch {
        return 0; // next-auth itself may need a running Next.js server; only the limit matters here.
      }
    };
    await withWindowLeft(20_000);
    for (let i = 0; i < 3; i++) expect(await attempt()).not.toBe(429);
    expect(await attempt()).toBe(429);
  });

  it("two instances spending leased permits at once never pass more than the limit together", async () => {
    const first = await import("@/lib/security/rate-limit");
    // A second copy of the module: its own leases, as another instance behind the load balancer has.
    vi.resetModules();
    const second = await import("@/lib/security/rate-limit");
    expect(second.rateLimit).not.toBe(first.rateLimit);
    const limit = 150; // leases of 7: the last one only partly fits under the limit
    expect(first.leaseSize(limit)).toBe(7);
    const now = Date.now(); // one window for every call, however long they take
    const calls = Array.from({ length: 400 }, (_, i) => (i % 2 ? first : second).rateLimit("shared:budget", limit, 60, now));
    const answers = await Promise.all(calls);
    expect(answers.filter((a) => a.ok)).toHaveLength(limit);
    // Spent: both instances refuse from then on without asking the database again.
    expect((await first.rateLimit("shared:budget", limit, 60, now + 1)).ok).toBe(false);
    expect((await second.rateLimit("shared:budget", limit, 60, now + 1)).ok).toBe(false);
  });

  it("windows reset, and old windows are pruned", async () => {
    const { rateLimit, pruneRateLimits } = await import("@/lib/security/rate-limit");
    const t = Date.UTC(2026, 0, 1, 12, 0, 30);
    expect((await rateLimit("unit", 1, 60, t)).ok).toBe(true);
    expect(await rateLimit("unit", 1, 60, t + 1000)).toEqual({ ok: false, retryAfter: 29, limit: 1, remaining: 0 });
    expect((await rateLimit("unit", 1, 60, t + 60_000)).ok).toBe(true);
    expect(await pruneRateLimits(new Date(t + 2 * 3_600_000))).toBeGreaterThanOrEqual(2);
  });
});
