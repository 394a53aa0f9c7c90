import { createRequire } from "node:module";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "../helpers/database";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * The database stays up but refuses: it turns read-only (maintenance, a failover to a standby),
 * a statement times out. Writers get the documented 503 with a message that says why, never
 * 500; /api/ready turns red while writes are refused and green again once they are taken,
 * without a restart; nothing is half-written.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let token: string;
let dbName: string;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_RATE_LIMIT_TOKEN: "100000" });
  dbName = new URL(fx.url).pathname.slice(1);
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  token = (await createPersonalToken(alice, { name: "refusals", scopes: ["requests:read", "requests:write"], expiresInDays: 1 })).secret;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

/** Every new transaction of the database is read-only; connections made before are ended so the pool reconnects into it. */
async function readOnly(on: boolean) {
  const client = new pg.Client({ connectionString: fx.url });
  await client.connect();
  try {
    // This session writes even while the database is read-only for everyone else.
    await client.query("SET default_transaction_read_only = off");
    await client.query(`ALTER DATABASE "${dbName}" ${on ? "SET default_transaction_read_only = on" : "RESET default_transaction_read_only"}`);
  } finally {
    await client.end();
  }
  await sql(fx.url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
}

const create = (n: number) =>
  fetch(`${api.url}/api/v1/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ workflowId: "temporary-access", input: validInput({ justification: `refusal drill request ${n}` }) }),
  });
const ready = async () => {
  const response = await fetch(`${api.url}/api/ready`);
  return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, string> } };
};

describe("a database that refuses writes", () => {
  it(
    "answers a load of concurrent writes with 503 and the read-only message, turns /api/ready red, and recovers without a restart",
    { timeout: 120_000 },
    async () => {
      expect((await ready()).status).toBe(200);
      const before = await fx.db.accessRequest.count();
      const events = await fx.db.auditEvent.count();
      await readOnly(true);
      try {
        const responses = await Promise.all(Array.from({ length: 30 }, (_, n) => create(n)));
        const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ code?: string; detail?: string }>));
        for (const [i, body] of bodies.entries()) {
          // The first uses of a pool whose connections were just ended may meet the lost connection; none is a 500.
          expect(responses[i]!.status, JSON.stringify(body)).toBe(503);
          expect(responses[i]!.headers.get("retry-after")).toBe("2");
        }
        expect(bodies.filter((b) => b.detail?.includes("read-only")).length).toBeGreaterThanOrEqual(25);
        expect(responses[0]!.headers.get("content-type")).toMatch(/^application\/problem\+json/);
        expect(bodies.find((b) => b.detail?.includes("read-only"))).toMatchObject({
          status: 503,
          code: "unavailable",
          detail: "The database is refusing changes right now (it is read-only, for maintenance or a failover). Nothing was saved; try again in a few minutes.",
        });
        // API reads count against rate limits kept in the database, so they get the same 503, not a 500.
        const list = await fetch(`${api.url}/api/v1/requests`, { headers: { authorization: `Bearer ${token}` } });
        expect(list.status).toBe(503);
        expect(((await list.json()) as { detail: string }).detail).toMatch(/read-only/);
        // Readiness turns red within its one-second cache, naming writes, so a load balancer stops sending traffic.
        await expect.poll(async () => (await ready()).status, { timeout: 3_000, interval: 200 }).toBe(503);
        const red = await ready();
        expect(red.status).toBe(503);
        expect(red.body).toMatchObject({ status: "not ready", checks: { database: "ok", writes: "refused: the database is read-only" } });
        // Liveness stays green: the process and the database answer, and a restart would not help.
        expect((await fetch(`${api.url}/api/health`)).status).toBe(200);
      } finally {
        await readOnly(false);
      }
      // Ending the connections to lift read-only may fail a first query on a pooled one; readiness waits that out.
      await expect.poll(async () => (await ready()).status, { timeout: 10_000 }).toBe(200);
      await expect.poll(() => fx.db.accessRequest.count().catch(() => -1), { timeout: 10_000 }).toBe(before);
      expect(await fx.db.auditEvent.count()).toBe(events);
      expect((await create(99)).status).toBe(201);
      const { walkChain } = await import("@/lib/audit/verify");
      expect((await walkChain()).ok).toBe(true);
    },
  );

  it("answers a statement timeout and a serialization failure with 503 and the busy message", async () => {
    const { databaseRefusal, databaseUnavailableMessage } = await import("@/lib/errors");
    const timedOut = await fx.db
      .$transaction(async (tx) => {
        await tx.$executeRaw`SET LOCAL statement_timeout = '50ms'`;
        return tx.$queryRaw`SELECT pg_sleep(1)`;
      })
      .catch((error: unknown) => error);
    expect(databaseRefusal(timedOut)).toBe("busy");
    expect(databaseUnavailableMessage(timedOut)).toMatch(/^The database is too busy to take this right now/);
    const serialization = await fx.db
      .$queryRawUnsafe(`DO $$ BEGIN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END $$`)
      .catch((error: unknown) => error);
    expect(databaseRefusal(serialization)).toBe("busy");
    // An error that is the caller's or a bug stays one: not every database error is a refusal.
    const unique = await fx.db.$queryRawUnsafe(`SELECT 1/0`).catch((error: unknown) => error);
    expect(databaseRefusal(unique)).toBeNull();
  });
});

describe("a session while the database refuses writes", () => {
  it("is kept, not ended, when it is due to be extended and cannot be saved", { timeout: 60_000 }, async () => {
    const user = await fx.db.user.findUniqueOrThrow({ where: { email: "alice@example.com" } });
    const sessionToken = `session-${Date.now()}`;
    // Made 20 minutes ago (8 h sessions, extended every 15 minutes): due to be extended at the next request.
    const expires = new Date(Date.now() + 8 * 3600_000 - 20 * 60_000);
    await fx.db.session.create({ data: { sessionToken, userId: user.id, expires } });
    // next-auth's own session handler (what getServerSession and /api/auth/session run), with the portal's options;
    // its core is not in the package's exports, so it is loaded by path.
    const { AuthHandler } = createRequire(import.meta.url)("../../node_modules/next-auth/core/index.js") as {
      AuthHandler: (params: { req: never; options: unknown }) => Promise<{ body?: unknown }>;
    };
    const { authOptions } = await import("@/lib/auth/options");
    const session = () =>
      AuthHandler({
        req: new Request("http://localhost:3999/api/auth/session", { headers: { cookie: `next-auth.session-token=${sessionToken}` } }) as never,
        options: authOptions(),
      });
    await readOnly(true);
    try {
      const answer = await session();
      expect(answer.body).toMatchObject({ user: { email: "alice@example.com" } });
      expect((await fx.db.session.findUniqueOrThrow({ where: { sessionToken } })).expires).toEqual(expires);
    } finally {
      await readOnly(false);
    }
    // Once writes are taken again, the session is extended as usual.
    await expect.poll(async () => ((await session()).body as { user?: { email: string } }).user?.email, { timeout: 10_000 }).toBe("alice@example.com");
    expect((await fx.db.session.findUniqueOrThrow({ where: { sessionToken } })).expires.getTime()).toBeGreaterThan(expires.getTime());
  });

  it("is not ended by a new NEXTAUTH_SECRET: sessions live in the database", async () => {
    const { AuthHandler } = createRequire(import.meta.url)("../../node_modules/next-auth/core/index.js") as {
      AuthHandler: (params: { req: never; options: unknown }) => Promise<{ body?: unknown }>;
    };
    const { authOptions } = await import("@/lib/auth/options");
    const user = await fx.db.user.findUniqueOrThrow({ where: { email: "alice@example.com" } });
    const sessionToken = `session-secret-${Date.now()}`;
    await fx.db.session.create({ data: { sessionToken, userId: user.id, expires: new Date(Date.now() + 3600_000) } });
    const answer = await AuthHandler({
      req: new Request("http://localhost:3999/api/auth/session", { headers: { cookie: `next-auth.session-token=${sessionToken}` } }) as never,
      options: { ...authOptions(), secret: "a-completely-different-secret-of-32-chars" },
    });
    expect(answer.body).toMatchObject({ user: { email: "alice@example.com" } });
  });
});
