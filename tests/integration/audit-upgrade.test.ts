import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databaseBefore } from "../helpers/database";
import { prepareDatabase } from "../../scripts/support/prepare-database";
import { setTestEnvironment } from "../helpers/environment";

/**
 * An installation upgraded from before the audit chain, with history in it: the events it
 * recorded then get their workflow, target and environment, are anchored into the chain by a
 * checkpoint, and from then on an edit to them breaks verification as it does for chained ones.
 */
const TARGET = "payments-api-staging";
let url: string;
let drop: (() => Promise<void>) | undefined;
const SYSTEM = { type: "system" as const, email: "latchkey" };

async function query(text: string, params: unknown[] = [], bypassTriggers = false) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    if (bypassTriggers) await client.query("SET session_replication_role = replica");
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  // The release before the audit chain: its migrations only.
  ({ url, drop } = await databaseBefore("20261125130946", "latchkey_upgrade"));
  // Its data: a person, two requests (one for TARGET), and 23 events, 6 of them about the TARGET request.
  await query(`INSERT INTO "User" (id, email, name, "updatedAt") VALUES ('u1', 'alice@example.com', 'alice', now())`);
  for (const [id, target] of [
    ["r-target", TARGET],
    ["r-other", "orders-db-prod"],
  ]) {
    await query(
      `INSERT INTO "AccessRequest" (id, "workflowId", "targetId", "requesterId", input, justification, "durationSeconds", stages, "updatedAt", status)
       VALUES ($1, 'temporary-access', $2, 'u1', '{}', 'old request', 3600, '[]', now(), 'expired')`,
      [id, target],
    );
  }
  const actions = ["request.created", "request.approved", "grant.activated", "credential.revealed", "grant.expired", "request.commented"];
  for (let i = 0; i < 23; i++) {
    const requestId = i < 6 ? "r-target" : i < 12 ? "r-other" : null;
    await query(
      `INSERT INTO "AuditEvent" ("occurredAt", "actorType", "actorEmail", action, "requestId", data) VALUES (now() - interval '30 days' + $1 * interval '1 minute', 'human', 'alice@example.com', $2, $3, $4)`,
      [i, requestId ? actions[i % 6] : "user.signed_in", requestId, JSON.stringify({ n: i })],
    );
  }
  // The upgrade: every migration since, as `npm start` applies them.
  await prepareDatabase(url);
  setTestEnvironment(url);
}, 180_000);
afterAll(async () => {
  const { disconnectDb } = await import("@/lib/db");
  await disconnectDb();
  await drop?.();
});

describe("history from before the audit chain, after an upgrade", () => {
  it("is found by History's filters: the migration gives events their workflow and target, the backfill their environment", { timeout: 60_000 }, async () => {
    const { searchHistory } = await import("@/lib/history/search");
    const { historyFiltersSchema } = await import("@/lib/history/filters");
    const byTarget = async () => (await searchHistory(historyFiltersSchema.parse({ target: TARGET }) as never, 100)).events.length;
    expect(await byTarget()).toBe(6);
    const { backfillAndAnchor } = await import("@/lib/audit/anchor");
    const result = await backfillAndAnchor(SYSTEM);
    expect(result).toMatchObject({ legacyEvents: 23, anchored: 23 });
    const { rows } = await query(`SELECT count(*)::int AS n FROM "AuditEvent" WHERE "targetId" = $1 AND environment = 'staging' AND hash IS NULL`, [TARGET]);
    expect(rows[0].n).toBe(6);
    expect(
      (await searchHistory(historyFiltersSchema.parse({ environment: "staging" }) as never, 100)).events.filter((e) => e.requestId === "r-target"),
    ).toHaveLength(6);
    // Run again: nothing left to do, no second anchor.
    expect(await backfillAndAnchor(SYSTEM)).toMatchObject({ anchored: 0, anchorSeq: null });
    const { rows: anchors } = await query(`SELECT count(*)::int AS n FROM "AuditEvent" WHERE action = 'audit.pre_chain_anchored'`);
    expect(anchors[0].n).toBe(1);
  });

  it("verifies, saying how many events are anchored rather than chained, and catches an edit to one of them", { timeout: 60_000 }, async () => {
    const { verifyAuditChain, walkChain } = await import("@/lib/audit/verify");
    const saved = await verifyAuditChain("manual");
    expect(saved).toMatchObject({ ok: true, outcome: "intact", legacyEvents: 23, anchoredEvents: 23 });
    // History and Admin → Audit say so.
    const { renderToStaticMarkup } = await import("react-dom/server");
    const { ChainStatus } = await import("@/components/history/chain-status");
    const html = renderToStaticMarkup(await ChainStatus());
    expect(html).toContain("23 of them, recorded before the chain existed, are anchored by a checkpoint rather than chained.");
    // A superuser rewrites an old event: before anchoring this went unnoticed.
    const { rows } = await query(`SELECT seq, "actorEmail" FROM "AuditEvent" WHERE seq = 3`);
    await query(`UPDATE "AuditEvent" SET "actorEmail" = 'mallory@example.com' WHERE seq = 3`, [], true);
    expect(await walkChain()).toMatchObject({
      ok: false,
      outcome: "altered",
      problem: expect.stringMatching(/recorded before the chain, were altered, removed or inserted after they were anchored/),
    });
    await query(`UPDATE "AuditEvent" SET "actorEmail" = $1 WHERE seq = 3`, [rows[0].actorEmail], true);
    expect((await walkChain()).ok).toBe(true);
    // Without bypassing triggers, only filling in an empty workflow, target or environment of an old event is allowed; once anchored, that too is caught.
    await expect(query(`UPDATE "AuditEvent" SET "actorEmail" = 'mallory@example.com' WHERE seq = 3`)).rejects.toThrow(/append-only/);
    await expect(query(`UPDATE "AuditEvent" SET "targetId" = 'orders-db-prod' WHERE seq = 1`)).rejects.toThrow(/append-only/);
    await query(`UPDATE "AuditEvent" SET "workflowId" = 'temporary-access' WHERE seq = 20`);
    expect(await walkChain()).toMatchObject({ ok: false, outcome: "altered" });
  });
});
