import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { holdTransactions } from "../helpers/hold-connections";

/**
 * db.$transaction (lib/db.ts) begins and ends transactions itself on a connection of the
 * pool; Prisma's queries join them. What callers relied on from Prisma's $transaction must
 * hold: all or nothing for the driver's statements and Prisma's queries together, a time
 * limit after which nothing more runs (not in autocommit, not on the connection's next
 * user), a bounded wait for a connection that callers answer as a busy database, steps after
 * the commit only once it has committed, and every connection given back.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let sqlOf: typeof import("@/lib/db/sql");
let dbOf: typeof import("@/lib/db");
let afterCommit: typeof import("@/lib/db/after-commit").afterCommit;
let databaseRefusal: typeof import("@/lib/errors").databaseRefusal;
/** A connection of its own, outside the pool: what other sessions see. */
let outside: pg.Client;

beforeAll(async () => {
  fx = await engineFixture();
  sqlOf = await import("@/lib/db/sql");
  dbOf = await import("@/lib/db");
  ({ afterCommit } = await import("@/lib/db/after-commit"));
  ({ databaseRefusal } = await import("@/lib/errors"));
  outside = new pg.Client({ connectionString: fx.url });
  await outside.connect();
  await outside.query(`CREATE TABLE tx_probe (name text PRIMARY KEY, via text NOT NULL)`);
});
afterAll(async () => {
  await outside?.end();
  await fx?.close();
});

const seen = async (name: string) => (await outside.query<{ via: string }>(`SELECT via FROM tx_probe WHERE name = $1`, [name])).rows.map((r) => r.via);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The pool's connections, all idle again once every transaction has ended. */
const poolState = () => {
  const pool = dbOf.processPool();
  return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
};

describe("db.$transaction", () => {
  it("commits the driver's statements and Prisma's queries together, seen by no one else before the commit, and runs what waits for the commit after it", async () => {
    const order: string[] = [];
    const value = await fx.db.$transaction(async (tx) => {
      await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('both', 'driver')`);
      await tx.$executeRaw`INSERT INTO tx_probe (name, via) VALUES ('both-prisma', 'prisma')`;
      // Each sees the other's write: one connection, one transaction.
      expect((await tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM tx_probe WHERE name LIKE 'both%'`)[0]!.n).toBe(2);
      expect(await sqlOf.sqlRows(tx, sqlOf.sql`SELECT name FROM tx_probe WHERE name LIKE 'both%' ORDER BY name`)).toEqual([
        { name: "both" },
        { name: "both-prisma" },
      ]);
      expect(await seen("both")).toEqual([]);
      expect(afterCommit(tx, () => order.push("after commit"))).toBe(true);
      order.push("work done");
      return 42;
    });
    order.push("returned");
    expect(value).toBe(42);
    expect(order).toEqual(["work done", "after commit", "returned"]);
    expect([...(await seen("both")), ...(await seen("both-prisma"))]).toEqual(["driver", "prisma"]);
  });

  it("rolls back both when the work fails, whichever failed: nothing committed, nothing run after", async () => {
    const after: string[] = [];
    await expect(
      fx.db.$transaction(async (tx) => {
        await tx.$executeRaw`INSERT INTO tx_probe (name, via) VALUES ('failing-1', 'prisma')`;
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('failing-2', 'driver')`);
        afterCommit(tx, () => after.push("ran"));
        // The primary key refuses it: the driver's statement fails, and the transaction with it.
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('failing-1', 'driver')`);
      }),
    ).rejects.toMatchObject({ code: "23505" });
    await expect(
      fx.db.$transaction(async (tx) => {
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('failing-3', 'driver')`);
        // Prisma's query fails the same way.
        await tx.$executeRaw`INSERT INTO tx_probe (name, via) VALUES ('failing-3', 'prisma')`;
      }),
    ).rejects.toThrow(/23505|unique/i);
    for (const name of ["failing-1", "failing-2", "failing-3"]) expect(await seen(name)).toEqual([]);
    expect(after).toEqual([]);
    expect(poolState().waiting).toBe(0);
  });

  it("ends at its time limit: rolled back, and every later statement refused (the driver's and Prisma's alike), never run outside it", async () => {
    const refusals: string[] = [];
    const { withAuditContext } = await import("@/lib/audit/context");
    // The log says which limit, and where (the caller's answer, 503, logs nothing).
    const logged: string[] = [];
    const stderr = vi
      .spyOn(process.stderr, "write")
      .mockImplementation(((line: string | Uint8Array) => (logged.push(String(line)), true)) as typeof process.stderr.write);
    const late = withAuditContext({ route: "POST /api/v1/probe" }, () =>
      fx.db.$transaction(
        async (tx) => {
          await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('expired-before', 'driver')`);
          // Prisma's part is opened late, just before the limit: its own clock runs 250 ms behind the transaction's,
          // so what follows comes after the transaction's end and before Prisma's.
          await sleep(250);
          await tx.$executeRaw`INSERT INTO tx_probe (name, via) VALUES ('expired-prisma-early', 'prisma')`;
          await sleep(150);
          for (const write of [
            () => tx.$executeRaw`INSERT INTO tx_probe (name, via) VALUES ('expired-after', 'prisma')`,
            () => sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('expired-after-driver', 'driver')`),
          ])
            await write().then(
              () => refusals.push("ran"),
              (error: { code?: string }) => refusals.push(error.code ?? "error"),
            );
        },
        { timeout: 300 },
      ),
    );
    await late.catch(() => undefined);
    stderr.mockRestore();
    const line = logged.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "a transaction ran past its time limit and is rolled back");
    expect(line).toMatchObject({ level: "error", component: "db", timeoutMs: 300, route: "POST /api/v1/probe" });
    await expect(late).rejects.toMatchObject({ code: "P2028" });
    // Answered as a busy database (503, try again), not as a failure of the portal: nothing of it was saved.
    expect(databaseRefusal(await late.catch((error: unknown) => error))).toBe("busy");
    expect(refusals).toEqual(["P2028", "P2028"]);
    await sleep(100);
    for (const name of ["expired-before", "expired-prisma-early", "expired-after", "expired-after-driver"]) expect(await seen(name)).toEqual([]);
  });

  it("at its time limit gives its connection back even while its code still runs, and passes on the code's own error as it is", async () => {
    let refused: unknown;
    const slow = fx.db.$transaction(
      async (tx) => {
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('held-past-limit', 'driver')`);
        await sleep(600);
        refused = await sqlOf.sqlRun(tx, sqlOf.sql`SELECT 1`).catch((error: unknown) => error);
        throw Object.assign(new Error("the code's own refusal"), { code: "conflict" });
      },
      { timeout: 100 },
    );
    const settled = slow.catch((error: unknown) => error);
    await sleep(400);
    // The code is still asleep; its connection is back in the pool, outside any transaction.
    expect(poolState().idle).toBe(poolState().total);
    expect(await settled).toMatchObject({ message: "the code's own refusal", code: "conflict" });
    expect(refused).toMatchObject({ code: "P2028" });
    expect(databaseRefusal(refused)).toBe("busy");
    expect(await seen("held-past-limit")).toEqual([]);
  });

  it("fails when PostgreSQL answers its COMMIT with ROLLBACK (its code went on after a failed statement), and runs nothing meant for after a commit", async () => {
    const after: string[] = [];
    const outcome = await fx.db
      .$transaction(async (tx) => {
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('swallowed', 'driver')`);
        afterCommit(tx, () => after.push("ran"));
        await sqlOf.sqlRun(tx, sqlOf.sql`SELECT no_such_column FROM tx_probe`).catch(() => undefined);
        return "looked fine";
      })
      .catch((error: Error) => error.message);
    expect(outcome).toMatch(/rolled back at its commit/);
    expect(after).toEqual([]);
    expect(await seen("swallowed")).toEqual([]);
  });

  it("refuses an isolation level it would not set", async () => {
    await expect(fx.db.$transaction(async () => "ran", { isolationLevel: "Serializable" })).rejects.toThrow(/isolation level/);
  });

  it("refuses what its code sends after it has committed or rolled back: never run in autocommit, or in the connection's next transaction", async () => {
    let kept: import("@/lib/db").Tx | undefined;
    await fx.db.$transaction(async (tx) => {
      kept = tx;
      await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('committed', 'driver')`);
    });
    // Another transaction now has the connection.
    const holding = fx.db.$transaction(async () => sleep(200));
    const stray = await sqlOf.sqlRun(kept!, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('stray-driver', 'driver')`).catch((error: unknown) => error);
    expect(stray).toMatchObject({ code: "P2028" });
    // Not a busy database: the transaction committed, and "nothing was saved, try again" would be untrue (a time limit's refusal is, above).
    expect(databaseRefusal(stray)).toBeNull();
    await expect(kept!.$executeRaw`INSERT INTO tx_probe (name, via) VALUES ('stray-prisma', 'prisma')`).rejects.toMatchObject({ code: "P2028" });
    await holding;
    // And after a rollback: the code that failed may still hold its client.
    let failed: import("@/lib/db").Tx | undefined;
    await expect(
      fx.db.$transaction(async (tx) => {
        failed = tx;
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    await expect(sqlOf.sqlRun(failed!, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES ('stray-after-rollback', 'driver')`)).rejects.toMatchObject({
      code: "P2028",
    });
    await expect(failed!.$executeRaw`INSERT INTO tx_probe (name, via) VALUES ('stray-after-rollback-prisma', 'prisma')`).rejects.toMatchObject({
      code: "P2028",
    });
    expect([...(await seen("stray-after-rollback")), ...(await seen("stray-after-rollback-prisma"))]).toEqual([]);
    expect(await seen("committed")).toEqual(["driver"]);
    expect([...(await seen("stray-driver")), ...(await seen("stray-prisma"))]).toEqual([]);
  });

  it("waits for a connection no longer than maxWait, failing as a busy database (P2024), and loses no connection to the wait", async () => {
    const pool = dbOf.processPool();
    const size = pool.options.max!;
    const { release, holders } = await holdTransactions(fx.db, size);
    const began = performance.now();
    const refused = await fx.db.$transaction(async () => "ran", { maxWait: 200 }).catch((error: unknown) => error);
    expect(performance.now() - began).toBeLessThan(5_000);
    expect(refused).toMatchObject({ code: "P2024" });
    expect(databaseRefusal(refused)).toBe("busy");
    release();
    await Promise.all(holders);
    // The connection the refused call was waiting for went back to the pool when it came.
    for (let i = 0; i < 50 && poolState().idle < poolState().total; i++) await sleep(20);
    expect(poolState()).toEqual({ total: size, idle: size, waiting: 0 });
    expect(await fx.db.$transaction(async (tx) => (await sqlOf.sqlRows<{ one: number }>(tx, sqlOf.sql`SELECT 1 AS one`))[0]!.one)).toBe(1);
  });

  it("counts a call that waited for a connection, and how long, in latchkey_db_pool_wait_seconds; one that found a connection free is not counted", async () => {
    const { instanceMetricsText } = await import("@/lib/observability/metrics");
    const waits = async () => {
      const text = await instanceMetricsText();
      return {
        count: Number(text.match(/^latchkey_db_pool_wait_seconds_count (\S+)$/m)?.[1]),
        sum: Number(text.match(/^latchkey_db_pool_wait_seconds_sum (\S+)$/m)?.[1]),
      };
    };
    const pool = dbOf.processPool();
    const size = pool.options.max!;
    // Every connection open and idle first, so that the holders below take free ones and none of them waits.
    await Promise.all(Array.from({ length: size }, () => fx.db.$transaction(async () => sleep(50))));
    const before = await waits();
    expect(before.count).toBeGreaterThanOrEqual(0);
    const { release, holders } = await holdTransactions(fx.db, size);
    expect(await waits()).toEqual(before);
    // Both of pg-pool's ways in wait: a transaction's connect() and a read's query() (a callback).
    const waiting = fx.db.$transaction(async () => "ran", { maxWait: 10_000 });
    const read = pool.query<{ one: number }>("SELECT 1 AS one");
    await sleep(150);
    release();
    expect(await waiting).toBe("ran");
    expect((await read).rows[0]!.one).toBe(1);
    await Promise.all(holders);
    const after = await waits();
    expect(after.count).toBe(before.count + 2);
    expect(after.sum - before.sum).toBeGreaterThanOrEqual(0.28);
    expect(after.sum - before.sum).toBeLessThan(10);
    // A free connection: nothing waited.
    expect(await fx.db.$transaction(async () => "free")).toBe("free");
    expect(await waits()).toEqual(after);
    // Two calls at once for the one idle connection: the second waits for it, and is counted (idle ones are handed out a tick later).
    const most = await holdTransactions(fx.db, size - 1);
    expect(await Promise.all([fx.db.$transaction(async () => sleep(100)), fx.db.$transaction(async () => "second")])).toEqual([undefined, "second"]);
    most.release();
    await Promise.all(most.holders);
    expect((await waits()).count).toBe(after.count + 1);
  });

  it("gives every connection back: after failures, time-outs and commits, the pool is idle and each connection outside a transaction", async () => {
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 10 }, (_, i) =>
        fx.db.$transaction((tx) => sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO tx_probe (name, via) VALUES (${`many-${i}`}, 'driver')`)),
      ),
      ...Array.from({ length: 5 }, () => fx.db.$transaction((tx) => sqlOf.sqlRun(tx, sqlOf.sql`SELECT no_such_column FROM tx_probe`))),
      ...Array.from({ length: 5 }, () => fx.db.$transaction(() => sleep(300), { timeout: 50 })),
      ...Array.from({ length: 5 }, () => fx.db.$transaction((tx) => tx.user.count())),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([...Array(10).fill("fulfilled"), ...Array(10).fill("rejected"), ...Array(5).fill("fulfilled")]);
    for (let i = 0; i < 50 && poolState().idle < poolState().total; i++) await sleep(20);
    expect(poolState().idle).toBe(poolState().total);
    // No connection of the pool is left inside a transaction (idle in transaction, or aborted).
    const stuck = await outside.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`,
    );
    expect(stuck.rows[0]!.n).toBe(0);
    expect((await outside.query(`SELECT count(*)::int AS n FROM tx_probe WHERE name LIKE 'many-%'`)).rows[0].n).toBe(10);
  });

  it("carries a write along in a statement a later step sends, and sends by itself each write no statement took (lib/db/after-commit.ts, rideAlong)", async () => {
    const { rideAlong, takeRiders, beforeCommit } = await import("@/lib/db/after-commit");
    const { sql, sqlRun, join } = sqlOf;
    const probe = (name: string) => sql`INSERT INTO tx_probe (name, via) VALUES (${name}, 'rider')`;
    const ran: string[] = [];
    await fx.db.$transaction(async (tx) => {
      expect(rideAlong(tx, "carried", { build: async () => sql`carried AS (${probe("carried")})`, alone: async () => void ran.push("carried alone") })).toBe(
        true,
      );
      // One that cannot ride (its build gives null) stays, and is sent by itself after the other steps.
      expect(rideAlong(tx, "left", { build: async () => null, alone: async () => void (await sqlRun(tx, probe("left")), ran.push("left alone")) })).toBe(true);
      beforeCommit(tx, async () => {
        const riders = await takeRiders(tx);
        expect(riders).toHaveLength(1);
        await sqlRun(tx, sql`WITH ${join(riders, ", ")} SELECT 1`);
        ran.push("carrier");
      });
    });
    expect(ran).toEqual(["carrier", "left alone"]);
    expect(await seen("carried")).toEqual(["rider"]);
    expect(await seen("left")).toEqual(["rider"]);
    // Rolled back after the statement that carried it ran: the carried write goes with the rest.
    await expect(
      fx.db.$transaction(async (tx) => {
        rideAlong(tx, "carried", { build: async () => sql`carried AS (${probe("carried-then-rolled-back")})`, alone: async () => undefined });
        beforeCommit(tx, async () => void (await sqlRun(tx, sql`WITH ${join(await takeRiders(tx), ", ")} SELECT 1`)));
        beforeCommit(tx, async () => {
          expect((await sqlOf.sqlRows(tx, sql`SELECT via FROM tx_probe WHERE name = 'carried-then-rolled-back'`)).length).toBe(1);
          throw new Error("a later step fails");
        });
      }),
    ).rejects.toThrow("a later step fails");
    expect(await seen("carried-then-rolled-back")).toEqual([]);
    // A write of the same kind asked for while one is being built is not folded into it (it is already built): it is sent by itself.
    const sent: string[] = [];
    await fx.db.$transaction(async (tx) => {
      rideAlong(tx, "carried", {
        build: async () => {
          await sleep(10);
          rideAlong(tx, "carried", { build: async () => null, alone: async () => void sent.push("second alone") });
          return sql`carried AS (${probe("built-first")})`;
        },
        alone: async () => void sent.push("first alone"),
      });
      beforeCommit(tx, async () => void (await sqlRun(tx, sql`WITH ${join(await takeRiders(tx), ", ")} SELECT 1`)));
    });
    expect(sent).toEqual(["second alone"]);
    expect(await seen("built-first")).toEqual(["rider"]);
    // Outside a unit of work there is nothing to ride in: the caller sends the write at once.
    expect(rideAlong({}, "carried", { build: async () => null, alone: async () => undefined })).toBe(false);
  });

  it("keeps the call's context in one store: a transaction's code and its audit events see the HTTP request's id and route, and Prisma's part joins the transaction", async () => {
    const { withHttpRequestId } = await import("@/lib/observability/request-context");
    const { withAuditContext, auditContext } = await import("@/lib/audit/context");
    const { recordEvent } = await import("@/lib/audit/record");
    // Every store a call runs in: one for all of Latchkey's context (lib/observability/call-context.ts), not one per concern.
    const stores = new Set<AsyncLocalStorage<unknown>>();
    const original = AsyncLocalStorage.prototype.run;
    const run = vi.spyOn(AsyncLocalStorage.prototype, "run").mockImplementation(function (this: AsyncLocalStorage<unknown>, ...args: unknown[]) {
      stores.add(this);
      return original.apply(this, args as Parameters<typeof original>);
    } as typeof original);
    const requestId = "5b0c3f5e-9a51-4e8e-9a0e-7f5f2d5a1c11";
    let inside: ReturnType<typeof auditContext> | undefined;
    try {
      await withHttpRequestId(requestId, () =>
        withAuditContext({ route: "POST /api/v1/probe", ip: "192.0.2.7" }, () =>
          fx.db.$transaction(async (tx) => {
            inside = auditContext();
            await tx.$executeRaw`INSERT INTO tx_probe (name, via) VALUES ('in-context', 'prisma')`;
            await recordEvent(tx, { actor: { type: "system", email: "probe" }, action: "probe.context", data: {} });
          }),
        ),
      );
    } finally {
      run.mockRestore();
    }
    expect(inside).toEqual({ route: "POST /api/v1/probe", ip: "192.0.2.7", httpRequestId: requestId });
    expect(await seen("in-context")).toEqual(["prisma"]);
    const [event] = await fx.db.auditEvent.findMany({ where: { action: "probe.context" } });
    expect(event).toMatchObject({ httpRequestId: requestId, route: "POST /api/v1/probe", ip: "192.0.2.7" });
    expect(stores.size).toBe(1);
    // Outside the call nothing is left behind.
    expect(auditContext()).toEqual({});
  });
});
