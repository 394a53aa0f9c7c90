import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "@/lib/db/migrate";
import { databaseBefore } from "../helpers/database";

/**
 * The unreachable draft status leaves the enum (migration drop_draft_status) over a database
 * with history in it: statuses of requests and audit events are kept, the change-notification
 * trigger still fires, and a draft row, were there one, stops the migration with a message
 * that says what to look at, leaving the database as it was.
 */
const DROP = "20261129162504_drop_draft_status";
let url: string;
let drop: (() => Promise<void>) | undefined;

async function query<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  // The release before: every migration up to this one.
  ({ url, drop } = await databaseBefore(DROP, "latchkey_draft"));
  await query(`INSERT INTO "User" (id, email, name, "updatedAt") VALUES ('u1', 'alice@example.com', 'alice', now())`);
  for (const [id, status] of [
    ["r-active", "active"],
    ["r-draft", "draft"],
    ["r-done", "completed"],
  ]) {
    await query(
      `INSERT INTO "AccessRequest" (id, "workflowId", "targetId", "requesterId", input, justification, "durationSeconds", stages, "updatedAt", status, "expiresAt")
       VALUES ($1, 'temporary-access', 'payments-api-staging', 'u1', '{}', 'before the upgrade', 3600, '[]', now(), $2, now() + interval '1 hour')`,
      [id, status],
    );
  }
  await query(`INSERT INTO "AuditEvent" (seq, "actorType", "actorEmail", action, "requestId", "fromStatus", "toStatus", data)
               VALUES (1, 'system', 'latchkey', 'grant.activated', 'r-active', 'executing', 'active', '{}')`);
}, 180_000);

afterAll(() => drop?.());

describe("dropping the draft status", () => {
  it("stops, naming the rows to look at, while a request is draft, and changes nothing", async () => {
    await expect(migrate(url)).rejects.toThrow(/drop_draft_status: 1 request\(s\) and 0 audit event\(s\) have the status draft/);
    expect(await query(`SELECT status::text FROM "AccessRequest" WHERE id = 'r-draft'`)).toEqual([{ status: "draft" }]);
    expect(await query(`SELECT 1 FROM "_latchkey_migrations" WHERE name = $1`, [DROP])).toEqual([]);
  });

  it("once no row is draft, leaves the enum without it and every status as it was", async () => {
    await query(`UPDATE "AccessRequest" SET status = 'cancelled' WHERE id = 'r-draft'`);
    expect((await migrate(url)).applied).toContain(DROP);
    const values = await query<{ v: string }>(`SELECT unnest(enum_range(NULL::"RequestStatus"))::text AS v`);
    expect(values.map((r) => r.v)).not.toContain("draft");
    expect(values.map((r) => r.v)).toContain("pending");
    expect(await query(`SELECT id, status::text FROM "AccessRequest" ORDER BY id`)).toEqual([
      { id: "r-active", status: "active" },
      { id: "r-done", status: "completed" },
      { id: "r-draft", status: "cancelled" },
    ]);
    expect(await query(`SELECT "fromStatus"::text AS "from", "toStatus"::text AS "to" FROM "AuditEvent" WHERE "requestId" = 'r-active'`)).toEqual([
      { from: "executing", to: "active" },
    ]);
    await query(`INSERT INTO "AccessRequest" (id, "workflowId", "targetId", "requesterId", input, justification, "durationSeconds", stages, "updatedAt")
                 VALUES ('r-new', 'temporary-access', 'payments-api-staging', 'u1', '{}', 'after', 60, '[]', now())`);
    expect(await query(`SELECT status::text FROM "AccessRequest" WHERE id = 'r-new'`)).toEqual([{ status: "pending" }]);
  });

  it("keeps the trigger that tells every instance a grant left active, and only then", async () => {
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    try {
      const heard: string[] = [];
      listener.on("notification", (n) => heard.push(n.payload ?? ""));
      await listener.query(`LISTEN latchkey_changes`);
      await query(`UPDATE "AccessRequest" SET justification = 'not a status change' WHERE id = 'r-done'`);
      await query(`UPDATE "AccessRequest" SET status = 'revoked' WHERE id = 'r-active'`);
      await expect.poll(() => heard, { timeout: 5000 }).toContain("request:r-active");
      expect(heard).toEqual(["request:r-active"]);
    } finally {
      await listener.end();
    }
  });
});
