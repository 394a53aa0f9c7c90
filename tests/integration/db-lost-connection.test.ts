import { spawnSync } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";

/**
 * After a restart, a failover or an administrator's pg_terminate_backend, every connection
 * idle in the pool is dead, and the pool hears so only when it next reads from the socket. A
 * read given one of them is asked again on another connection instead of failing the page or
 * the session check; a write is never repeated.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
beforeAll(async () => {
  fx = await engineFixture();
  await fx.user("alice@example.com", ["engineering"]);
});
afterAll(() => fx?.close());

/**
 * Ends every other connection to the test database, as a failover would, and waits until they
 * are gone. psql runs synchronously, so this process reads nothing meanwhile: its pooled
 * connections are dead but do not know it yet, as happens when a failover and a request meet.
 */
function terminateOthers(): number {
  const sql =
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
  const psql = spawnSync("psql", [fx.url, "-XAtc", sql], { encoding: "utf8" });
  if (psql.status !== 0) throw new Error(psql.stderr);
  return Number(psql.stdout.trim());
}

describe("a pooled connection the server ended", () => {
  it("costs a read nothing: it is asked again on another connection, every time", async () => {
    const { db } = await import("@/lib/db");
    for (let round = 0; round < 5; round++) {
      // Several connections idle in the pool, then all of them ended at once.
      await Promise.all(Array.from({ length: 6 }, () => db.user.count()));
      expect(terminateOthers()).toBeGreaterThan(0);
      const [count, alice] = await Promise.all([db.user.count(), db.user.findUnique({ where: { email: "alice@example.com" } })]);
      expect(count).toBe(1);
      expect(alice?.email).toBe("alice@example.com");
    }
  });

  it("costs a read the hot path sends through the driver on the pool nothing either (lib/db/sql.ts)", async () => {
    const { db } = await import("@/lib/db");
    const { sqlRows, sql } = await import("@/lib/db/sql");
    const read = () => sqlRows<{ email: string }>(db, sql`SELECT email FROM "User" WHERE email = ${"alice@example.com"}`);
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 6 }, read));
      expect(terminateOthers()).toBeGreaterThan(0);
      const answers = await Promise.all(Array.from({ length: 3 }, read));
      expect(answers).toEqual(Array.from({ length: 3 }, () => [{ email: "alice@example.com" }]));
    }
  });

  it("does not repeat a write: its failure is the caller's to see", async () => {
    const { lostConnection } = await import("@/lib/db");
    expect(lostConnection(new Error("Database error. Code: `57P01`. Message: `terminating connection due to administrator command`"))).toBe(true);
    expect(lostConnection(Object.assign(new Error("Server has closed the connection."), { code: "P1017" }))).toBe(true);
    expect(lostConnection(new Error("Unique constraint failed on the fields: (`email`)"))).toBe(false);
    // Only the driver's own words count, never text that merely mentions them.
    expect(lostConnection(new Error("invalid input: ECONNRESET 57P01"))).toBe(false);
    const { db } = await import("@/lib/db");
    await Promise.all(Array.from({ length: 6 }, () => db.user.count()));
    terminateOthers();
    // Whether the write met a dead connection or a fresh one, it ran at most once.
    await db.user
      .create({ data: { email: "bob@example.com", name: "Bob", groups: [], roles: [] } })
      .catch((error: unknown) => expect(lostConnection(error)).toBe(true));
    expect(await db.user.count({ where: { email: "bob@example.com" } })).toBeLessThanOrEqual(1);
  });

  it("does not repeat a read that ran a while before the server ended it (an administrator stopping a runaway query), on either path, and says so", async () => {
    const { db } = await import("@/lib/db");
    const { sqlRows, sql } = await import("@/lib/db/sql");
    const { databaseRefusal } = await import("@/lib/errors");
    const reads = {
      findMany: () => db.user.findMany(),
      sql: () => sqlRows(db, sql`SELECT email FROM "User"`),
    };
    for (const [operation, read] of Object.entries(reads)) {
      const holder = new pg.Client({ connectionString: fx.url });
      await holder.connect();
      const said: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string) => (said.push(String(chunk)), true)) as typeof process.stderr.write;
      try {
        await holder.query('BEGIN; LOCK TABLE "User" IN ACCESS EXCLUSIVE MODE');
        const waiting = read().then(
          () => "answered",
          // Prisma's words for a lost connection and pg's own alike (lib/errors.ts).
          (error: unknown) => (databaseRefusal(error) === "unreachable" ? "ended" : String(error)),
        );
        // The read waits on the lock; once it has waited a while, an administrator ends it, then the lock goes.
        await new Promise((resolve) => setTimeout(resolve, 600));
        const { rows } = await holder.query(
          "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        );
        expect(rows.length, operation).toBe(1);
        await holder.query("COMMIT");
        // Asked again, it would now find the table free and answer.
        expect(await waiting, operation).toBe("ended");
      } finally {
        process.stderr.write = write;
        await holder.end();
      }
      // The operator is told why it was not asked again, and how long it had run.
      const warning = said
        .flatMap((chunk) => chunk.split("\n").filter(Boolean))
        .map((line) => JSON.parse(line) as { msg: string; operation: string; ms: number })
        .find((line) => line.msg.includes("not asking again"));
      expect(warning, operation).toMatchObject({ operation });
      expect(warning!.ms, operation).toBeGreaterThanOrEqual(500);
    }
  });
});
