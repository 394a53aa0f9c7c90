import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { migrate } from "@/lib/db/migrate";
import { databaseBefore } from "../helpers/database";
import { engineFixture, validInput } from "../helpers/engine-fixture";

/**
 * ANALYZE of "AuditEvent" computes statistics only for the columns the portal's statements filter,
 * join, sort or group on (prisma/migrations/20261203124500_audit_statistics_for_filtered_columns):
 * after events are recorded, linked and analyzed, pg_stats holds those columns and none of the ten
 * that are only read back. And the portal's statements still only read the ten back: every
 * mention of one in its SQL is one this test knows as a read, and no Prisma query on the audit
 * events filters, sorts or groups on one. A new use fails here until it is looked at: a filter on
 * one of the ten needs its statistics back.
 */

/** The columns ANALYZE leaves out: read back, never filtered on. */
const LEFT_OUT = ["data", "ip", "userAgent", "route", "httpRequestId", "seal", "sealKeyId", "actorId", "actorType", "fromStatus"];
/** The columns the history, the chainer and verification filter on: each keeps its statistics. */
const FILTERED = [
  "id",
  "seq",
  "occurredAt",
  "actorEmail",
  "action",
  "requestId",
  "toStatus",
  "workflowId",
  "targetId",
  "environment",
  "note",
  "hash",
  "prevHash",
  "chainKeyId",
];

let fx: Awaited<ReturnType<typeof engineFixture>>;

beforeAll(async () => {
  fx = await engineFixture();
}, 60_000);
afterAll(async () => {
  await fx?.close();
});

/** Every .ts and .tsx file under `dir` (Node.js's own recursive listing). */
const sources = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((entry) => /\.tsx?$/.test(entry) && !entry.split(path.sep).includes("node_modules"))
    .map((entry) => path.join(dir, entry));

describe("statistics of the audit events", () => {
  it("are kept for the columns the portal filters on and not for the ten it only reads back", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { chainBatch } = await import("@/lib/audit/chainer");
    const alice = await fx.user("alice@example.com", ["engineering"]);
    const bob = await fx.user("bob@example.com", ["engineering-leads"]);
    for (let i = 0; i < 5; i++) {
      const made = await engine.createRequest(alice, "temporary-access", validInput({ justification: `Statistics test request number ${i}` }));
      await engine.decide(bob, { requestId: made.id, decision: "approve", comment: `approved ${i}` });
    }
    while (((await chainBatch()) ?? 0) > 0);
    await fx.db.$executeRawUnsafe(`ANALYZE "AuditEvent"`);
    const rows = await fx.db.$queryRawUnsafe<{ attname: string }[]>(`SELECT attname FROM pg_stats WHERE schemaname = 'public' AND tablename = 'AuditEvent'`);
    const withStatistics = new Set(rows.map((r) => r.attname));
    expect(LEFT_OUT.filter((c) => withStatistics.has(c))).toEqual([]);
    expect(FILTERED.filter((c) => !withStatistics.has(c))).toEqual([]);
    // Every column of the table is in one list or the other: a column added later is decided on, not left to chance.
    const columns = await fx.db.$queryRawUnsafe<{ name: string }[]>(
      `SELECT attname AS name FROM pg_attribute WHERE attrelid = '"AuditEvent"'::regclass AND attnum > 0 AND NOT attisdropped`,
    );
    expect(columns.map((c) => c.name).sort()).toEqual([...LEFT_OUT, ...FILTERED].sort());
  }, 60_000);

  it("on a database analyzed before the migration, the ten keep the statistics they had, no longer refreshed, while the others are", async () => {
    const before = await databaseBefore("20261203124500", "latchkey_statistics");
    const client = new pg.Client({ connectionString: before.url });
    await client.connect();
    try {
      // Events by one actor, analyzed under the release before; then events by another, analyzed after the migration.
      const write = (who: string) =>
        client.query(
          `INSERT INTO "AuditEvent" ("actorType", "actorId", "actorEmail", action, data) SELECT 'human', $1, $1 || '@example.com', 'request.created', '{}' FROM generate_series(1, 50)`,
          [who],
        );
      const seen = async () =>
        Object.fromEntries(
          (
            await client.query<{ attname: string; values: string | null }>(
              `SELECT attname, most_common_vals::text AS values FROM pg_stats WHERE schemaname = 'public' AND tablename = 'AuditEvent' AND attname IN ('actorId', 'actorEmail')`,
            )
          ).rows.map((r) => [r.attname, r.values]),
        );
      await write("first");
      await client.query(`ANALYZE "AuditEvent"`);
      expect(await seen()).toEqual({ actorId: "{first}", actorEmail: "{first@example.com}" });
      await migrate(before.url);
      await write("second");
      await write("second");
      await client.query(`ANALYZE "AuditEvent"`);
      const after = await seen();
      expect(after.actorId).toBe("{first}");
      expect(after.actorEmail).toContain("second@example.com");
    } finally {
      await client.end();
      await before.drop();
    }
  }, 60_000);

  it("no statement of the portal filters, joins, sorts or groups on a column left out", () => {
    // The scan finds what it looks for: any new mention of a left-out column in SQL, wherever it stands, and a Prisma filter, sort or grouping on one.
    expect(sqlMentions(`sql\`SELECT 1 FROM "AuditEvent" e WHERE e.action = $1 AND e."actorId" = $2\``)).toEqual(["actorId"]);
    expect(sqlMentions(`Prisma.sql\`e.route = \${x}\``)).toEqual(["route"]);
    expect(sqlMentions(`await db.$queryRaw\`SELECT seq, data FROM "AuditEvent" ORDER BY seq\``)).toEqual(["data"]);
    expect(sqlMentions(`const label = \`\${e.fromStatus ?? "new"} → \${e.toStatus}\`;`)).toEqual([]);
    expect(prismaFilters(`db.auditEvent.findMany({ where: { action: "x", fromStatus: "active" } })`)).toEqual(["fromStatus"]);
    expect(prismaFilters(`tx.auditEvent.findFirst({ where: { actorId, action } })`)).toEqual(["actorId"]);
    expect(prismaFilters(`db.auditEvent.findMany({ distinct: ["route"], select: { id: true } })`)).toEqual(["route"]);
    expect(prismaFilters(`db.auditEvent.findFirst({ where: { action: "x", data: { path: ["userId"], equals: id } } })`)).toEqual([]);
    expect(prismaFilters(`db.auditEvent.findFirst({ where: { action: "x", data } })`)).toEqual(["data"]);
    expect(prismaFilters(`db.auditEvent.findMany({ where: { action: "x" }, select: { data: true, ip: true }, orderBy: { occurredAt: "desc" } })`)).toEqual([]);

    const files = ["lib", "app", "components"].flatMap((dir) => sources(path.join(process.cwd(), dir)));
    const mentions: Record<string, number> = {};
    const filters: string[] = [];
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      const name = path.relative(process.cwd(), file);
      for (const column of sqlMentions(text)) mentions[`${name} ${column}`] = (mentions[`${name} ${column}`] ?? 0) + 1;
      filters.push(...prismaFilters(text).map((column) => `${name}: ${column}`));
    }
    expect(filters).toEqual([]);
    // Every mention in SQL today selects, inserts or returns the column (read back). One more fails here until it is looked at:
    // a filter, join, sort or grouping on a left-out column needs its statistics back (and a new read-back mention joins this list).
    expect(mentions).toEqual(READ_BACK_MENTIONS);
  });
});

/** Keys of READ_BACK_MENTIONS ("<file> <column>") for one file's counts. */
const mentionsIn = (file: string, counts: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(counts).map(([column, n]) => [`${file} ${column}`, n]));
/** Where the left-out columns are named in SQL today: event-check.ts and conditions.ts select them, record.ts inserts them, verify.ts and export.ts read them. */
const READ_BACK_MENTIONS: Record<string, number> = {
  ...mentionsIn("lib/audit/event-check.ts", {
    data: 1,
    ip: 1,
    userAgent: 1,
    route: 1,
    httpRequestId: 1,
    seal: 1,
    sealKeyId: 1,
    actorId: 1,
    actorType: 2,
    fromStatus: 2,
  }),
  ...mentionsIn("lib/audit/record.ts", {
    data: 3,
    ip: 3,
    userAgent: 3,
    route: 3,
    httpRequestId: 3,
    seal: 3,
    sealKeyId: 3,
    actorId: 3,
    actorType: 3,
    fromStatus: 3,
  }),
  ...mentionsIn("lib/audit/verify.ts", { data: 1 }),
  ...mentionsIn("lib/history/conditions.ts", { data: 1, ip: 1, userAgent: 1, route: 1, actorId: 1, actorType: 2, fromStatus: 2 }),
  ...mentionsIn("lib/history/export.ts", { data: 1, actorType: 1, fromStatus: 1 }),
};

/**
 * The left-out columns a source names in SQL, once per mention: in templates tagged as SQL (sql, Prisma.sql, $queryRaw,
 * $executeRaw, raw) and in any template naming "AuditEvent"; quoted ("actorId"), after a table alias (e.data), or, in a
 * statement naming "AuditEvent", bare (data). A template nested in another hides the rest of the outer one from this scan.
 */
function sqlMentions(text: string): string[] {
  const found: string[] = [];
  for (const [, tag, body] of text.matchAll(/(\b(?:sql|Prisma\.sql|\$queryRaw|\$executeRaw|\$queryRawUnsafe\(|\$executeRawUnsafe\(|raw\()\s*)?`([^`]*)`/g)) {
    if (!tag && !/"AuditEvent"/.test(body!)) continue;
    for (const column of LEFT_OUT) {
      const forms = [
        `"${column}"`,
        `\\b[a-z]\\.${column}\\b`,
        ...(/"AuditEvent"/.test(body!) && /^[a-z]+$/.test(column) ? [`(?<![\\w."$])${column}(?![\\w"])`] : []),
      ];
      for (const _ of body!.matchAll(new RegExp(forms.join("|"), "g"))) found.push(column);
    }
  }
  return found;
}

/** The left-out columns named in the where, orderBy, by, distinct, having or cursor of a Prisma query on the audit events; a JSON path into data never used the column's statistics. */
function prismaFilters(text: string): string[] {
  const found: string[] = [];
  for (const at of [...text.matchAll(/auditEvent\.\w+\(/g)].map((m) => m.index!)) {
    const call = balanced(text, text.indexOf("(", at));
    for (const key of call.matchAll(/\b(where|orderBy|by|distinct|having|cursor)\s*:\s*/g)) {
      const part = balanced(call, key.index! + key[0].length);
      for (const column of LEFT_OUT) {
        const named = new RegExp(`\\b${column}\\b`).test(part);
        // Passes only when every mention of data opens a JSON path into it: shorthand `{ data }` or `data: x` is a filter on the column.
        const jsonPath = column === "data" && (part.match(/\bdata\b/g) ?? []).length === (part.match(/\bdata\s*:\s*\{\s*path\b/g) ?? []).length;
        if (named && !jsonPath) found.push(column);
      }
    }
  }
  return found;
}

/** The bracketed text that opens at `from` (a "(", "{" or "["), through its matching close; empty when nothing opens there. */
function balanced(text: string, from: number): string {
  if (!"({[".includes(text[from] ?? "")) return "";
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    if ("({[".includes(text[i]!)) depth += 1;
    else if (")}]".includes(text[i]!) && --depth === 0) return text.slice(from, i + 1);
  }
  return text.slice(from);
}
