import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";

/**
 * LATCHKEY_DB_POOL_SIZE sets how many connections a process keeps to PostgreSQL, and so how
 * many transactions it runs at once (lib/db.ts, poolSize): with 13, thirteen transactions run
 * together on thirteen connections of their own, and a fourteenth waits for one of them.
 */

const SIZE = 13;
let fx: Awaited<ReturnType<typeof engineFixture>>;
let outside: pg.Client;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_DB_POOL_SIZE: String(SIZE) });
  outside = new pg.Client({ connectionString: fx.url });
  await outside.connect();
}, 60_000);
afterAll(async () => {
  await outside?.end();
  await fx?.close();
  delete process.env.LATCHKEY_DB_POOL_SIZE;
});

describe("the pool's size", () => {
  it("is LATCHKEY_DB_POOL_SIZE: that many transactions run at once, each on a connection of its own, and one more waits for a free one", async () => {
    const { processPool } = await import("@/lib/db");
    const { databaseRefusal } = await import("@/lib/errors");
    expect(processPool().options.max).toBe(SIZE);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const backends = new Set<number>();
    const holders = Array.from({ length: SIZE }, () =>
      fx.db.$transaction(
        async (tx) => {
          const [row] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
          backends.add(row!.pid);
          await released;
        },
        { timeout: 20_000 },
      ),
    );
    for (let i = 0; i < 250 && backends.size < SIZE; i++) await new Promise((r) => setTimeout(r, 20));
    expect(backends.size).toBe(SIZE);
    const open = await outside.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction'`,
    );
    expect(open.rows[0]!.n).toBe(SIZE);
    // One more waits: refused as a busy database once its maxWait has passed.
    const refused = await fx.db.$transaction(async () => "ran", { maxWait: 200 }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: "P2024" });
    expect(databaseRefusal(refused)).toBe("busy");
    expect((refused as Error).message).toContain(`${SIZE} connections`);
    // And runs once one of them is free.
    const waiting = fx.db.$transaction(async () => "ran", { maxWait: 10_000 });
    release();
    await Promise.all(holders);
    expect(await waiting).toBe("ran");
    expect(processPool().totalCount).toBe(SIZE);
  });
});
