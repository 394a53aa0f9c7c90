import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";

/**
 * ANALYZE of "AuditEvent" keeps statistics only for the columns the portal's statements filter,
 * join, sort or group on (prisma/migrations/20261203124500_audit_statistics_for_filtered_columns):
 * after events are recorded, linked and analyzed, pg_stats holds those columns and none of the
 * ten that are only read back; and no statement of the portal filters on one of the ten, so
 * leaving them out changes no plan. A new filter on one of them fails here until that column
 * gets its statistics back.
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

/** Every .ts and .tsx file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return entry === "node_modules" ? [] : sources(full);
    return /\.tsx?$/.test(entry) ? [full] : [];
  });
}

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

  it("no statement of the portal filters, joins, sorts or groups on a column left out", () => {
    // The scan finds what it looks for: a filter on a left-out column in SQL and in a Prisma query, and a JSON path into data passes.
    expect(leftOutFilters(`await db.$queryRaw\`SELECT 1 FROM "AuditEvent" e WHERE e.action = $1 AND e."actorId" = $2\``)).toEqual(["actorId"]);
    expect(leftOutFilters(`db.auditEvent.findMany({ where: { action: "x", fromStatus: "active" } })`)).toEqual(["fromStatus"]);
    expect(leftOutFilters(`db.auditEvent.findFirst({ where: { action: "x", data: { path: ["userId"], equals: id } } })`)).toEqual([]);
    expect(leftOutFilters(`db.auditEvent.findMany({ where: { action: "x" }, select: { data: true, ip: true }, orderBy: { occurredAt: "desc" } })`)).toEqual([]);
    expect(leftOutFilters(`db.auditEvent.groupBy({ by: ["route"], _count: true })`)).toEqual(["route"]);
    expect(leftOutFilters(`sql\`SELECT e.data, e.ip, e."userAgent" FROM "AuditEvent" e WHERE e.seq > $1 ORDER BY e.seq\``)).toEqual([]);
    const files = [...sources(path.join(process.cwd(), "lib")), ...sources(path.join(process.cwd(), "app"))];
    const found = files.flatMap((file) => leftOutFilters(readFileSync(file, "utf8")).map((column) => `${path.relative(process.cwd(), file)}: ${column}`));
    expect(found).toEqual([]);
  });
});

/** The left-out columns a source file's statements on the audit events filter, join, sort or group on. */
function leftOutFilters(text: string): string[] {
  const found: string[] = [];
  // SQL: in a statement naming "AuditEvent", a left-out column right after WHERE, AND, OR, ON or BY, compared or sorted.
  for (const statement of text.match(/`[^`]*"AuditEvent"[^`]*`/g) ?? []) {
    for (const column of LEFT_OUT) {
      const name = `(?:\\w+\\.)?(?:"${column}"|\\b${column}\\b)`;
      const predicate = new RegExp(
        `(?:WHERE|AND|OR|ON|BY)\\s*\\(?\\s*${name}\\s*(?:=|<>|!=|<|>|IS\\b|IN\\b|@>|<@|\\?|->|#>|LIKE|ILIKE|~|\\)|ASC\\b|DESC\\b|,|$)`,
        "im",
      );
      if (predicate.test(statement)) found.push(column);
    }
  }
  // Prisma: a left-out column in the where, orderBy or by of a query on the audit events; a JSON path into data never used its statistics.
  for (const at of [...text.matchAll(/auditEvent\.\w+\(/g)].map((m) => m.index!)) {
    const call = balanced(text, text.indexOf("(", at));
    for (const key of call.matchAll(/\b(where|orderBy|by)\s*:\s*/g)) {
      const part = balanced(call, key.index! + key[0].length);
      for (const column of LEFT_OUT) {
        const named = new RegExp(`(?:\\b${column}\\s*:|"${column}")`).test(part);
        const jsonPath = column === "data" && !/\bdata\s*:(?!\s*\{\s*path\b)/.test(part);
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
