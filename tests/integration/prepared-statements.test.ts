import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";

/**
 * The portal prepares the statements it sends again and again (lib/db.ts): PostgreSQL then
 * parses each once per connection and may keep its plan. One-off texts, and those whose plan
 * must follow their values (the history's), are sent unprepared, and a process names a
 * bounded number of texts.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
beforeAll(async () => {
  fx = await engineFixture();
});
afterAll(() => fx?.close());

describe("statement names", () => {
  it("are given from a text's second sighting, the same each time after, never to texts planned each time, and to at most the bound", async () => {
    const { statementNamer, PLANNED_EACH_TIME, MAX_PREPARED } = await import("@/lib/db");
    const name = statementNamer(3);
    const sql = (text: string) => ({ sql: text, args: [1] });
    expect(name(sql("SELECT $1"))).toBeUndefined();
    const first = name(sql("SELECT $1"));
    expect(first).toMatch(/^latchkey_\d+$/);
    expect(name(sql("SELECT $1"))).toBe(first);
    // Another text, another name.
    name(sql("SELECT $1 + 1"));
    const second = name(sql("SELECT $1 + 1"));
    expect(second).toMatch(/^latchkey_\d+$/);
    expect(second).not.toBe(first);
    // Planned each time, or without parameters (it may hold several statements): never named, however often.
    const planned = `${PLANNED_EACH_TIME.text}SELECT $1 + 2`;
    for (let i = 0; i < 5; i++) expect(name(sql(planned))).toBeUndefined();
    for (let i = 0; i < 5; i++) expect(name({ sql: "SELECT 1; SELECT 2", args: [] })).toBeUndefined();
    // The bound: a third text is named, a fourth is not, while the named keep their names.
    name(sql("SELECT $1 + 4"));
    expect(name(sql("SELECT $1 + 4"))).toMatch(/^latchkey_\d+$/);
    name(sql("SELECT $1 + 5"));
    expect(name(sql("SELECT $1 + 5"))).toBeUndefined();
    expect(name(sql("SELECT $1"))).toBe(first);
    // The portal's bound, the README's: 256 texts named, the 257th not.
    const portal = statementNamer();
    const named = Array.from({ length: MAX_PREPARED + 1 }, (_, i) => {
      portal(sql(`SELECT $1 + ${i}`));
      return portal(sql(`SELECT $1 + ${i}`));
    });
    expect(named.filter((n) => n !== undefined)).toHaveLength(256);
    expect(named.at(-1)).toBeUndefined();
  });
});

describe("on a connection of the portal's pool", () => {
  it("a query sent twice is prepared, once; one sent once, or planned each time, is not", async () => {
    const { PLANNED_EACH_TIME } = await import("@/lib/db");
    // One transaction: one connection, whose prepared statements pg_prepared_statements lists.
    const prepared = await fx.db.$transaction(async (tx) => {
      for (let i = 0; i < 3; i++) await tx.user.findMany({ where: { email: "prepared-twice@example.com" }, select: { id: true } });
      await tx.user.findMany({ where: { email: "prepared-once@example.com" }, select: { id: true, name: true } });
      for (let i = 0; i < 3; i++) await tx.$queryRaw`${PLANNED_EACH_TIME}SELECT count(*) FROM "User" WHERE email = ${"planned@example.com"}`;
      return tx.$queryRaw<{ statement: string }[]>`SELECT statement FROM pg_prepared_statements WHERE NOT from_sql`;
    });
    const texts = prepared.map((p) => p.statement);
    expect(texts.filter((t) => /SELECT "t0"\."id" FROM "public"\."User" AS "t0" WHERE "t0"\."email" = \$1/.test(t))).toHaveLength(1);
    expect(texts.some((t) => t.includes('"t0"."name"'))).toBe(false);
    expect(texts.some((t) => t.startsWith(PLANNED_EACH_TIME.text))).toBe(false);
  });

  it("the history's pages are planned for their filters each time", async () => {
    // An approver's page reads through the index first: one approved request makes it one.
    const approver = await fx.user("lee@example.com", ["engineering-leads"]);
    const requester = await fx.user("ann@example.com", ["engineering"]);
    await fx.db.$executeRaw`
      INSERT INTO "AccessRequest" (id, "workflowId", "targetId", "requesterId", status, input, justification, "durationSeconds", stages, "updatedAt")
      VALUES ('rq-prepared', 'temporary-access', 'sandbox', ${requester.id}, 'expired', '{}', 'x', 600, '[]', now())`;
    await fx.db
      .$executeRaw`INSERT INTO "Approval" (id, "requestId", "approverId", decision, comment) VALUES ('ap-prepared', 'rq-prepared', ${approver.id}, 'approve', '')`;
    const { searchHistory } = await import("@/lib/history/search");
    const { historyFiltersSchema } = await import("@/lib/history/filters");
    // Statements the history sends, as the driver sends them.
    const pg = (await import("pg")).default;
    const sent: { name?: string; text: string }[] = [];
    const query = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
      const [config] = args;
      if (config && typeof config === "object" && "text" in config) sent.push(config as { name?: string; text: string });
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      for (const filters of [{}, { q: "refund" }, { actor: "ann@example.com" }, { approver: "lee@example.com" }])
        for (let i = 0; i < 3; i++) await searchHistory(historyFiltersSchema.parse(filters));
    } finally {
      pg.Client.prototype.query = query;
    }
    const pages = sent.filter((s) => s.text.includes('FROM "AuditEvent" e'));
    expect(pages.length).toBeGreaterThanOrEqual(12);
    expect(pages.filter((s) => s.name !== undefined)).toEqual([]);
  });

  // Prisma's reads, and those the hot path sends through the driver on the pool (lib/db/sql.ts).
  const staleReaders = {
    "Prisma's client": () => fx.db.user.findMany({ where: { email: "stale@example.com" }, select: { id: true, image: true } }),
    "the driver on the pool": async () => {
      const [{ sqlRows, sql }, { db }] = await Promise.all([import("@/lib/db/sql"), import("@/lib/db")]);
      return sqlRows<{ id: string }>(db, sql`SELECT id, image FROM "User" WHERE email = ${"stale-driver@example.com"}`);
    },
  };

  it.each(Object.entries(staleReaders))(
    "a read (through %s) whose prepared statement a migration has made stale is asked again, and the stale connections leave the pool",
    async (_, read) => {
      // Prepared (the text's second sending) and used, on whichever connections the pool gives.
      for (let i = 0; i < 4; i++) expect(await read()).toEqual([]);
      // A migration changes the type of a column the statement returns: PostgreSQL refuses to run it
      // as prepared ("cached plan must not change result type") until it is prepared again.
      await fx.db.$executeRawUnsafe(`ALTER TABLE "User" ALTER COLUMN image TYPE varchar(2000)`);
      try {
        for (let i = 0; i < 4; i++) expect(await read()).toEqual([]);
      } finally {
        await fx.db.$executeRawUnsafe(`ALTER TABLE "User" ALTER COLUMN image TYPE text`);
      }
      for (let i = 0; i < 4; i++) expect(await read()).toEqual([]);
    },
  );

  it("a transaction that meets a stale prepared statement fails once, and its connection leaves the pool", async () => {
    const read = () =>
      fx.db.$transaction((tx) => tx.user.findMany({ where: { email: "stale-in-transaction@example.com" }, select: { id: true, image: true } }));
    // Prepared and used in transactions, on the connection the pool gives each (the last one given back).
    for (let i = 0; i < 4; i++) expect(await read()).toEqual([]);
    await fx.db.$executeRawUnsafe(`ALTER TABLE "User" ALTER COLUMN image TYPE varchar(2000)`);
    const outcomes: string[] = [];
    try {
      for (let i = 0; i < 4; i++)
        outcomes.push(
          await read().then(
            () => "ok",
            (error: Error) => (/cached plan must not change result type/.test(error.message) ? "stale" : error.message),
          ),
        );
    } finally {
      await fx.db.$executeRawUnsafe(`ALTER TABLE "User" ALTER COLUMN image TYPE text`);
    }
    // A write may not be asked again, so the first fails; kept in the pool, its connection would fail every one after it.
    expect(outcomes).toEqual(["stale", "ok", "ok", "ok"]);
  });

  it("a transaction that meets a prepared statement its connection no longer has fails once, and the connection leaves the pool", async () => {
    const read = (forget = false) =>
      fx.db.$transaction(async (tx) => {
        // As a pooler that does not keep prepared statements, or a DISCARD, would leave it.
        if (forget) await tx.$executeRawUnsafe("DEALLOCATE ALL");
        return tx.user.findMany({ where: { email: "deallocated@example.com" }, select: { id: true, email: true } });
      });
    for (let i = 0; i < 4; i++) expect(await read()).toEqual([]);
    const outcomes: string[] = [];
    for (const forget of [true, false, false])
      outcomes.push(
        await read(forget).then(
          () => "ok",
          (error: Error) => (/prepared statement "latchkey_\d+" does not exist/.test(error.message) ? "gone" : error.message),
        ),
      );
    expect(outcomes).toEqual(["gone", "ok", "ok"]);
  });
});
