import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "../helpers/database";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * README "When the database refuses": a serialization failure (40001, 40P01) is answered 503
 * with Retry-After: 2 and the busy message, never 500, and nothing is half-written. Here a
 * real deadlock: the request-creating transaction of POST /api/v1/requests (through a trigger
 * the test installs) and another session take two row locks in opposite orders, and
 * PostgreSQL's deadlock detector ends the route's transaction. The retry then succeeds.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let token: string;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_RATE_LIMIT_TOKEN: "100000" });
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  token = (await createPersonalToken(alice, { name: "deadlock", scopes: ["requests:read", "requests:write"], expiresInDays: 1 })).secret;
  await sql(fx.url, `CREATE TABLE drill_locks (id int PRIMARY KEY); INSERT INTO drill_locks VALUES (1), (2)`);
  // Requests whose justification asks for it lock row 2, then row 1; others pass untouched.
  await sql(
    fx.url,
    `CREATE FUNCTION drill_lock() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF NEW.justification LIKE 'deadlock drill%' THEN
         PERFORM 1 FROM drill_locks WHERE id = 2 FOR UPDATE;
         PERFORM 1 FROM drill_locks WHERE id = 1 FOR UPDATE;
       END IF;
       IF NEW.justification LIKE 'serialization drill%' THEN
         RAISE EXCEPTION 'could not serialize access due to concurrent update' USING ERRCODE = 'serialization_failure';
       END IF;
       RETURN NEW;
     END $$;
     CREATE TRIGGER drill_lock BEFORE INSERT ON "AccessRequest" FOR EACH ROW EXECUTE FUNCTION drill_lock()`,
  );
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

const create = (justification: string) =>
  fetch(`${api.url}/api/v1/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ workflowId: "temporary-access", input: validInput({ justification }) }),
  });
const BUSY = /^The database is too busy to take this right now/;

describe("a transaction the database ends to break a deadlock or a serialization race", () => {
  it("answers 503 with Retry-After and the busy message, writes nothing, and the retry goes through", { timeout: 60_000 }, async () => {
    const events = await fx.db.auditEvent.count();
    const other = new pg.Client({ connectionString: fx.url });
    await other.connect();
    try {
      await other.query("BEGIN");
      // This session waits long before checking for a deadlock, so PostgreSQL ends the route's transaction, not this one.
      await other.query("SET LOCAL deadlock_timeout = '30s'");
      await other.query("SELECT 1 FROM drill_locks WHERE id = 1 FOR UPDATE");
      const answer = create("deadlock drill: first try");
      // Once the route's transaction holds row 2 and waits for row 1, take row 2: a cycle.
      await expect
        .poll(
          async () =>
            (
              await sql(
                fx.url,
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO%AccessRequest%'`,
              )
            ).rows[0].n,
          { timeout: 20_000, interval: 50 },
        )
        .toBe(1);
      const mine = other.query("SELECT 1 FROM drill_locks WHERE id = 2 FOR UPDATE");
      const response = await answer;
      await mine;
      await other.query("COMMIT");
      const body = (await response.json()) as { status: number; code: string; detail: string };
      expect(response.status, JSON.stringify(body)).toBe(503);
      expect(response.headers.get("retry-after")).toBe("2");
      expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(body).toMatchObject({ status: 503, code: "unavailable", detail: expect.stringMatching(BUSY) });
    } finally {
      await other.end();
    }
    expect(await fx.db.accessRequest.count({ where: { justification: { startsWith: "deadlock drill" } } })).toBe(0);
    expect(await fx.db.auditEvent.count()).toBe(events);

    // The second time, with nobody holding the other lock, the same call makes the request.
    const retry = await create("deadlock drill: second try");
    expect(retry.status).toBe(201);
    expect(await fx.db.accessRequest.count({ where: { justification: "deadlock drill: second try" } })).toBe(1);
  });

  it("a serialization failure (40001) gets the same answer, and nothing is written", async () => {
    const events = await fx.db.auditEvent.count();
    const response = await create("serialization drill");
    const body = (await response.json()) as { detail: string };
    expect(response.status, JSON.stringify(body)).toBe(503);
    expect(response.headers.get("retry-after")).toBe("2");
    expect(body.detail).toMatch(BUSY);
    expect(await fx.db.accessRequest.count({ where: { justification: "serialization drill" } })).toBe(0);
    expect(await fx.db.auditEvent.count()).toBe(events);
  });
});
