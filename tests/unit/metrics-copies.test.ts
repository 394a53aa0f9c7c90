import { describe, expect, it, vi } from "vitest";

/**
 * Next.js may load lib/observability/metrics.ts more than once in a process (each bundle its
 * own copy): a built web server had three. A metric observed through one copy must show in
 * what /api/metrics reads through another, or the series stays at zero there.
 */
describe("the process's metrics", () => {
  it("are one registry whichever copy of the module observes and whichever reads", async () => {
    const first = await import("@/lib/observability/metrics");
    vi.resetModules();
    const second = await import("@/lib/observability/metrics");
    expect(second).not.toBe(first);
    expect(second.poolWait).toBe(first.poolWait);
    const count = async () => Number((await second.instanceMetricsText()).match(/^latchkey_db_pool_wait_seconds_count (\S+)$/m)?.[1]);
    const before = await count();
    first.poolWait.observe(0.25);
    expect(await count()).toBe(before + 1);
  });
});
