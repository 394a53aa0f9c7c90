import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { holdTransactions } from "../helpers/hold-connections";

/**
 * LATCHKEY_DB_POOL_SIZE sets how many connections a process keeps to PostgreSQL, and so how
 * many transactions it runs at once (lib/db.ts, poolSize): with 13, thirteen transactions run
 * together on thirteen connections of their own, and a fourteenth waits for one of them.
 */

const SIZE = 13;
let fx: Awaited<ReturnType<typeof engineFixture>>;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_DB_POOL_SIZE: String(SIZE) });
}, 60_000);
afterAll(async () => {
  await fx?.close();
  delete process.env.LATCHKEY_DB_POOL_SIZE;
});

/** Holds `count` transactions open at once, one connection each (holdTransactions checks that), and asks for one more meanwhile: its refusal. */
async function refusalWhileHolding(count: number): Promise<unknown> {
  const { release, holders } = await holdTransactions(fx.db, count);
  try {
    return await fx.db.$transaction(async () => "ran", { maxWait: 200 }).catch((error: unknown) => error);
  } finally {
    release();
    await Promise.all(holders);
  }
}

describe("the pool's size", () => {
  it("is LATCHKEY_DB_POOL_SIZE: that many transactions run at once, each on a connection of its own, and one more waits for a free one", async () => {
    const { processPool } = await import("@/lib/db");
    const { databaseRefusal } = await import("@/lib/errors");
    expect(processPool().options.max).toBe(SIZE);
    const refused = await refusalWhileHolding(SIZE);
    expect(refused).toMatchObject({ code: "P2024" });
    expect(databaseRefusal(refused)).toBe("busy");
    expect((refused as Error).message).toContain(`${SIZE} connections`);
    // And the next runs once they are done.
    expect(await fx.db.$transaction(async () => "ran", { maxWait: 1_000 })).toBe("ran");
    expect(processPool().totalCount).toBe(SIZE);
  });

  it("is ten more in the worker's process, for its jobs (some hold two connections while an outside system answers)", { timeout: 60_000 }, async () => {
    const { processPool, WORKER_EXTRA_CONNECTIONS } = await import("@/lib/db");
    const { startWorker } = await import("@/lib/jobs/worker");
    const boss = await startWorker(fx.url, { pollingIntervalSeconds: 0.5 });
    expect(processPool().options.max).toBe(SIZE + WORKER_EXTRA_CONNECTIONS);
    await boss.stop({ graceful: false, wait: true });
    const refused = await refusalWhileHolding(SIZE + WORKER_EXTRA_CONNECTIONS);
    expect(refused).toMatchObject({ code: "P2024" });
    expect((refused as Error).message).toContain(`${SIZE + WORKER_EXTRA_CONNECTIONS} connections`);
  });
});
