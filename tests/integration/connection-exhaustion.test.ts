import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgres, type RunningPostgres } from "../../scripts/support/embedded-postgres";
import { prepareDatabase } from "../../scripts/support/prepare-database";
import { setTestEnvironment } from "../helpers/environment";
import { startApiServer } from "../helpers/api-server";
import { validInput } from "../helpers/engine-fixture";

/**
 * The database runs out of connections (another client holds them all). A server of its own
 * with a small max_connections, since the shared one cannot be starved: writers get 503 with
 * the busy message, never 500; /api/ready turns red and green again once connections free up.
 */

let server: RunningPostgres;
let dir: string;
let url: string;
let api: Awaited<ReturnType<typeof startApiServer>>;
let token: string;
const holders: pg.Client[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-exhaustion-"));
  chmodSync(dir, 0o755);
  server = await startEmbeddedPostgres({
    dataDir: path.join(dir, "data"),
    persistent: false,
    quiet: true,
    flags: ["-c", "max_connections=14", "-c", "superuser_reserved_connections=0"],
  });
  const u = new URL(server.adminUrl);
  u.pathname = "/latchkey_exhaustion";
  url = u.toString();
  await prepareDatabase(url);
  setTestEnvironment(url, { LATCHKEY_RATE_LIMIT_TOKEN: "100000" });
  const { db } = await import("@/lib/db");
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const row = await db.user.create({ data: { email: "alice@example.com", name: "alice", groups: ["engineering"], roles: ["requester"] } });
  token = (
    await createPersonalToken(
      { id: row.id, email: row.email, groups: row.groups, roles: ["requester"] },
      { name: "exhaustion", scopes: ["requests:read", "requests:write"], expiresInDays: 1 },
    )
  ).secret;
  api = await startApiServer();
}, 120_000);
afterAll(async () => {
  await Promise.all(holders.splice(0).map((c) => c.end().catch(() => undefined)));
  await api?.close();
  const { disconnectDb } = await import("@/lib/db");
  await disconnectDb();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Takes every free connection slot, then ends the portal's own connections and takes those slots too. */
async function exhaust() {
  const take = async () => {
    for (;;) {
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        holders.push(client);
      } catch (error) {
        expect((error as Error).message).toMatch(/too many clients/);
        return;
      }
    }
  };
  await take();
  const pids = holders.map((c) => (c as unknown as { processID: number }).processID);
  await holders[0]!.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IS NOT NULL AND pid <> ALL($1::int[]) AND backend_type = 'client backend'`,
    [pids],
  );
  await new Promise((r) => setTimeout(r, 200));
  await take();
}

const create = (n: number) =>
  fetch(`${api.url}/api/v1/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ workflowId: "temporary-access", input: validInput({ justification: `exhaustion drill request ${n}` }) }),
  });

describe("a database out of connections", () => {
  it("answers concurrent writes with 503 and the busy message, turns /api/ready red, and recovers once connections free up", { timeout: 120_000 }, async () => {
    expect((await create(0)).status).toBe(201);
    const counted = new pg.Client({ connectionString: url });
    await counted.connect();
    const before = Number((await counted.query(`SELECT count(*) AS n FROM "AccessRequest"`)).rows[0].n);
    await counted.end();

    await exhaust();
    const responses = await Promise.all(Array.from({ length: 20 }, (_, n) => create(n + 1)));
    const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ code?: string; detail?: string }>));
    for (const [i, body] of bodies.entries()) {
      expect(responses[i]!.status, JSON.stringify(body)).toBe(503);
      expect(body.code).toBe("unavailable");
      expect(responses[i]!.headers.get("retry-after")).toBe("2");
    }
    expect(bodies.filter((b) => b.detail?.startsWith("The database is too busy to take this right now")).length).toBeGreaterThanOrEqual(15);
    const red = await fetch(`${api.url}/api/ready`);
    expect(red.status).toBe(503);
    expect(((await red.json()) as { checks: Record<string, string> }).checks.database).toBe("refusing connections (busy)");

    await Promise.all(holders.splice(0).map((c) => c.end()));
    await expect.poll(async () => (await fetch(`${api.url}/api/ready`)).status, { timeout: 15_000 }).toBe(200);
    expect((await create(99)).status).toBe(201);
    const after = new pg.Client({ connectionString: url });
    await after.connect();
    // Nothing refused was half-written: exactly the one request made after recovery was added.
    expect(Number((await after.query(`SELECT count(*) AS n FROM "AccessRequest"`)).rows[0].n)).toBe(before + 1);
    await after.end();
  });
});
