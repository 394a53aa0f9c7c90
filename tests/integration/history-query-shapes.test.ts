import fc from "fast-check";
import { Prisma } from "@prisma/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";

/**
 * The history's query shapes (an index range per filter, a week-by-week walk through one GIN
 * index for text, approved requests as one array value, exports streamed from one statement on the pg driver)
 * against a plain reference: the same filters as one unindexed WHERE, ordered by time. Run on
 * 6,000 events over 30 weeks, enough that pages cross weeks and the planner picks the indexes,
 * with ids that do not follow times (as when events are chained after commit).
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let search: typeof import("@/lib/history/search");
let filters: typeof import("@/lib/history/filters");

const NOTES = ["refund stuck in pending", "read the settlement logs", "quarterly reconciliation", "rotate the webhook secret", "kraken migration", null, null];

beforeAll(async () => {
  fx = await engineFixture();
  search = await import("@/lib/history/search");
  filters = await import("@/lib/history/filters");
  const approver = await fx.user("lee@example.com", ["engineering-leads"]);
  const requester = await fx.user("ann@example.com", ["engineering"]);
  // Requests for the approver filter: every fifth approved by lee.
  await fx.db.$executeRawUnsafe(`
    INSERT INTO "AccessRequest" (id, "workflowId", "targetId", "requesterId", status, input, justification, "durationSeconds", stages, "updatedAt")
    SELECT 'rq' || n, 'temporary-access', 'sandbox', '${requester.id}', 'expired', '{}', 'x', 600, '[]', now() FROM generate_series(0, 199) n`);
  await fx.db.$executeRawUnsafe(`
    INSERT INTO "Approval" (id, "requestId", "approverId", decision, comment)
    SELECT 'ap' || n, 'rq' || n, '${approver.id}', (CASE WHEN n % 10 = 5 THEN 'reject' ELSE 'approve' END)::"Decision", '' FROM generate_series(0, 199, 5) n`);
  // Times run over 30 weeks; every fifth event's time is a day before its neighbours' (ids out of time order).
  const notes = NOTES.map((n) => (n === null ? "NULL" : `'${n}'`)).join(",");
  await fx.db.$executeRawUnsafe(`
    INSERT INTO "AuditEvent" (seq, "occurredAt", "actorType", "actorEmail", action, "requestId", "toStatus", data, "workflowId", "targetId", environment, note)
    SELECT 1000000 + n,
      timestamp '2026-03-02' + n * interval '50 minutes' - (CASE WHEN n % 5 = 0 THEN interval '1 day' ELSE interval '0' END),
      'human', (ARRAY['ann@example.com', 'bob@example.com', 'lee@example.com'])[1 + n % 3],
      (ARRAY['request.created', 'request.approved', 'grant.revoked', 'auth.signed_in'])[1 + n % 4],
      'rq' || (n % 200), (ARRAY['pending', 'active', 'revoked', NULL]::"RequestStatus"[])[1 + n % 4], '{}',
      'temporary-access', (ARRAY['sandbox', 'payments-api-production', 'ledger-db-production'])[1 + n % 3],
      (ARRAY['staging', 'production'])[1 + n % 2], (ARRAY[${notes}])[1 + n % ${NOTES.length}]
    FROM generate_series(0, 5999) n`);
  await fx.db.$executeRawUnsafe(`ANALYZE "AuditEvent"`);
});
afterAll(() => fx?.close());

/** The reference: the filters as one WHERE, no index in mind, in time order. */
async function reference(raw: Record<string, string>, newestFirst: boolean): Promise<string[]> {
  const f = filters.historyFiltersSchema.parse(raw);
  const where: string[] = ["true"];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown) => where.push(sql.replace("?", `$${values.push(v)}`));
  if (f.actor) add(`"actorEmail" = ?`, f.actor);
  if (f.target) add(`"targetId" = ?`, f.target);
  if (f.environment) add(`environment = ?`, f.environment);
  if (f.status) add(`"toStatus"::text = ?`, f.status);
  if (f.action) add(`action = ?`, f.action);
  if (f.approver)
    add(
      `"requestId" IN (SELECT a."requestId" FROM "Approval" a JOIN "User" u ON u.id = a."approverId" WHERE u.email = ? AND a.decision = 'approve')`,
      f.approver,
    );
  if (f.q) add(`to_tsvector('english', coalesce(note, '')) @@ websearch_to_tsquery('english', ?)`, f.q);
  if (f.from) add(`"occurredAt" >= ?::timestamp`, f.from.toISOString());
  if (f.to) add(`"occurredAt" < ?::timestamp`, f.to.toISOString());
  const order = newestFirst ? "DESC" : "ASC";
  const rows = await fx.db.$queryRawUnsafe<{ id: bigint }[]>(
    `SELECT id FROM "AuditEvent" WHERE ${where.join(" AND ")} ORDER BY "occurredAt" ${order}, id ${order}`,
    ...values,
  );
  return rows.map((r) => r.id.toString());
}

/** Every page, forwards through `next`; and the same pages again backwards through `previous` from the last. */
async function pages(raw: Record<string, string>, pageSize = 10): Promise<{ forwards: string[]; backwards: string[] }> {
  const query = filters.historyFiltersSchema.parse(raw);
  const forwards: string[] = [];
  let page = await search.searchHistory(query, pageSize);
  for (;;) {
    forwards.push(...page.events.map((e) => e.id.toString()));
    if (!page.next) break;
    page = await search.searchHistory({ ...query, after: BigInt(page.next) }, pageSize);
  }
  const backwards: string[] = [];
  page = await search.searchHistory({ ...query, end: "last" }, pageSize);
  for (;;) {
    backwards.unshift(...page.events.map((e) => e.id.toString()));
    if (!page.previous) break;
    page = await search.searchHistory({ ...query, before: BigInt(page.previous) }, pageSize);
  }
  return { forwards, backwards };
}

const CASES: Record<string, string>[] = [
  { q: "refund" },
  { q: "settlement logs", environment: "production" },
  { q: "refund", environment: "production", action: "request.created" },
  { q: "kraken", target: "sandbox", status: "active" },
  { q: "reconciliation", actor: "lee@example.com", from: "2026-04-01", to: "2026-05-15" },
  { q: "webhook", approver: "lee@example.com" },
  { q: "nothing-matches-this" },
  { approver: "lee@example.com", action: "grant.revoked" },
  { target: "payments-api-production", status: "active", from: "2026-04-10", to: "2026-06-30" },
  { environment: "staging", from: "2026-05-01", to: "2026-05-01" },
];

describe("history query shapes return what a plain query returns", () => {
  it.each(CASES)("newest and oldest first, every page both ways: %o", async (raw) => {
    for (const sort of ["newest", "oldest"] as const) {
      const expected = await reference(raw, sort === "newest");
      const { forwards, backwards } = await pages({ ...raw, sort });
      expect(forwards).toEqual(expected);
      expect(backwards).toEqual(expected);
    }
    // The cases are chosen to matter: most match more than a page, none matches everything.
    expect((await reference(raw, true)).length).toBeLessThan(6000);
  });

  it("an approver's requests reach the events' query intact, whatever their ids hold", async () => {
    // The ids travel as the text of a PostgreSQL array: quotes, commas, braces, backslashes, spaces, NULL.
    const approver = await fx.user("odd-ids@example.com", ["engineering-leads"]);
    const requester = await fx.db.user.findUniqueOrThrow({ where: { email: "ann@example.com" } });
    const ids = ['odd"quote', "odd,comma", "odd{brace}", "odd\\backslash", "odd space", "NULL", "odd;semi"];
    for (const [n, id] of ids.entries()) {
      await fx.db.$executeRaw`
        INSERT INTO "AccessRequest" (id, "workflowId", "targetId", "requesterId", status, input, justification, "durationSeconds", stages, "updatedAt")
        VALUES (${id}, 'temporary-access', 'sandbox', ${requester.id}, 'expired', '{}', 'x', 600, '[]', now())`;
      await fx.db.$executeRaw`
        INSERT INTO "Approval" (id, "requestId", "approverId", decision, comment) VALUES (${`odd${n}`}, ${id}, ${approver.id}, 'approve', '')`;
      await fx.db.$executeRaw`
        INSERT INTO "AuditEvent" ("occurredAt", "actorType", action, "requestId", data)
        VALUES (timestamp '2026-08-01 10:00:00' + ${n} * interval '1 minute', 'human', 'request.created', ${id}, '{}')`;
    }
    const expected = await reference({ approver: "odd-ids@example.com" }, true);
    expect(expected).toHaveLength(ids.length);
    const { forwards, backwards } = await pages({ approver: "odd-ids@example.com", sort: "newest" }, 3);
    expect(forwards).toEqual(expected);
    expect(backwards).toEqual(expected);
  });

  it("a cursor naming no event gives an empty page, not an error", async () => {
    const query = filters.historyFiltersSchema.parse({ q: "refund", after: "999999999" });
    expect(await search.searchHistory(query)).toEqual({ events: [], next: null, previous: null });
  });
});

describe("exports streamed from one statement", () => {
  it("write the same bytes as Prisma's rows through the same CSV and JSON Lines formatting, defused cells included", async () => {
    // Cells a spreadsheet would run, quotes, line breaks, a NUL-free odd character: through both paths.
    await fx.db.$executeRawUnsafe(`
      INSERT INTO "AuditEvent" (seq, "occurredAt", "actorType", "actorEmail", action, data, ip, "userAgent", route, note)
      VALUES (2000001, timestamp '2026-09-01 10:00:00.120', 'human', '=cmd|'' /C calc''!A0', 'history.exported', '{"b": "+1", "a": [1, "x,\\"y\\""]}', '@10.0.0.1', E'-tab\\there', 'GET /x', E'line one\\nline "two", =HYPERLINK("http://x")'),
             (2000002, timestamp '2026-09-01 10:00:01', 'system', NULL, 'history.exported', '{}', NULL, NULL, NULL, 'plain ünïcode €')`);
    // Every column PostgreSQL writes, with what makes csvCell quote or defuse (a comma in an id
    // sends its group of columns down the slow way), empty texts, and data JSON.stringify spaces
    // and orders differently from jsonb (integer keys first, numbers as JavaScript reads them).
    await fx.db.$executeRawUnsafe(`
      INSERT INTO "AuditEvent" (seq, "occurredAt", "actorType", "actorEmail", action, "requestId", "workflowId", "targetId", environment, "fromStatus", "toStatus", data, ip, "userAgent", route, note, hash)
      VALUES (-2000003, timestamp '2026-09-01 10:00:02.5', 'human', 'a;b@example.com', '-action', 'rq,1', '"wf"', E'tab\tin', E'\rcr', 'pending', 'active',
              '{"b": 1.50, "10": "x", "2": [true, null], "a": "=1;2"}', '', 'Mozilla/5.0 (X11; Linux x86_64)', '', '', '+hash'),
             (2000004, timestamp '2026-09-01 10:00:03', 'system', '', '', '', '', '', '', NULL, NULL, '"=just a string"', E'line\nbreak', '@ua', '=route', E'\tnote', ''),
             (2000005, timestamp '2026-09-01 10:00:04', 'system', NULL, 'x', NULL, NULL, NULL, NULL, NULL, NULL, 'null', NULL, NULL, NULL, NULL, NULL),
             (2000006, timestamp '2026-09-01 10:00:05', 'system', NULL, 'x', NULL, NULL, NULL, NULL, NULL, NULL, '-12', NULL, NULL, NULL, NULL, NULL)`);
    const { exportStream, csvCell, EXPORT_COLUMNS } = await import("@/lib/history/export");
    const raw = { from: "2026-08-01", to: "2026-09-30" };
    const f = filters.filtersOf(filters.historyFiltersSchema.parse(raw));
    const csv = await new Response(exportStream("csv", f, "carol@example.com", null)).text();
    const jsonl = await new Response(exportStream("jsonl", f, "carol@example.com", null, "newest")).text();
    const rows = await fx.db.auditEvent.findMany({
      where: { occurredAt: { gte: new Date("2026-08-01T00:00:00Z"), lt: new Date("2026-10-01T00:00:00Z") } },
      orderBy: [{ occurredAt: "asc" }, { id: "asc" }],
    });
    expect(rows.length).toBeGreaterThan(100);
    // The columns the exports read, in their order, as the Prisma path gave them.
    const FIELDS = [
      "id",
      "seq",
      "occurredAt",
      "actorType",
      "actorId",
      "actorEmail",
      "action",
      "requestId",
      "fromStatus",
      "toStatus",
      "data",
      "ip",
      "userAgent",
      "route",
      "workflowId",
      "targetId",
      "environment",
      "note",
      "hash",
    ] as const;
    const plain = (e: (typeof rows)[number]): Record<string, unknown> => ({
      ...Object.fromEntries(FIELDS.map((k) => [k, e[k]])),
      seq: e.seq?.toString() ?? null,
      id: e.id.toString(),
      occurredAt: e.occurredAt.toISOString(),
    });
    const lines = csv.split("\r\n");
    expect(lines[0]).toBe("# Latchkey audit export");
    expect(JSON.parse(lines[1]!.slice(2))).toMatchObject({ generatedBy: "carol@example.com", filters: { from: "2026-08-01", to: "2026-09-30" } });
    expect(lines[2]).toBe(EXPORT_COLUMNS.join(","));
    const body = rows.map((r) => `${EXPORT_COLUMNS.map((c) => csvCell(plain(r)[c])).join(",")}\r\n`).join("");
    expect(csv.slice(lines.slice(0, 3).join("\r\n").length + 2)).toBe(body);
    expect(body).toContain(`,'=cmd|' /C calc'!A0,`);
    expect(body).toContain(`,'@10.0.0.1,'-tab\there,`);
    expect(body).toContain(`"line one\nline ""two"", =HYPERLINK(""http://x"")"`);
    const events = jsonl.trimEnd().split("\n").slice(1);
    expect(events).toEqual(rows.reverse().map((r) => JSON.stringify({ type: "event", ...plain(r) })));
  });
});

describe("data cells written from jsonb's text", () => {
  it("are exactly csvCell of the parsed value, and take the one-pass way for every value without numbers or index-like keys", async () => {
    const { csvCell, jsonbCell } = await import("@/lib/history/export");
    // Strings made mostly of what jsonb escapes or spaces around, or csvCell quotes for.
    const text = fc.string({
      unit: fc.constantFrom('"', "\\", ",", ":", ";", " ", "\n", "\r", "\t", "\u0001", "\u2028", "=", "-", "1", "a", "é", "😀", "{", "]"),
      maxLength: 8,
    });
    const key = text.filter((k) => !/^[0-9]/.test(k));
    const { free } = fc.letrec((tie) => ({
      free: fc.oneof({ depthSize: "small" }, text, fc.boolean(), fc.constant(null), tie("array"), tie("object")),
      array: fc.array(tie("free"), { maxLength: 4 }),
      object: fc.dictionary(key, tie("free"), { maxKeys: 4 }),
    }));
    const container = fc.oneof(fc.array(free, { maxLength: 4 }), fc.dictionary(key, free, { maxKeys: 4 }));
    const check = async (values: unknown[], mustAnswer: boolean) => {
      const rows = await fx.db.$queryRaw<
        { t: string }[]
      >`SELECT v::jsonb::text AS t FROM unnest(${values.map((v) => JSON.stringify(v))}::text[]) WITH ORDINALITY AS x(v, n) ORDER BY n`;
      for (const { t } of rows) {
        const cell = jsonbCell(t);
        if (mustAnswer) expect(cell, t).not.toBeNull();
        if (cell !== null) expect(cell, t).toBe(csvCell(JSON.parse(t)));
      }
    };
    await fc.assert(
      fc.asyncProperty(fc.array(container, { minLength: 1, maxLength: 20 }), (values) => check(values, true)),
      { numRuns: 60 },
    );
    // Anything else, numbers and index-like keys included: left to csvCell, or the same cell.
    await fc.assert(
      fc.asyncProperty(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 20 }), (values) => check(values, false)),
      { numRuns: 60 },
    );
    for (const t of ['{"b": 1.50}', '{"10": "x", "2": "y"}', "[-1]", "12", '"=x"', "null"]) expect(jsonbCell(t), t).toBeNull();
  });
});

describe("CSV cells written by PostgreSQL", () => {
  it("are exactly csvCell's, one text at a time and in groups tested together", async () => {
    const { csvCell, csvCellSql, csvCellsSql } = await import("@/lib/history/export");
    // Texts made mostly of what csvCell looks at: quotes, separators, line breaks, formula starts.
    const text = fc.option(
      fc.string({ unit: fc.constantFrom('"', ",", ";", "\r", "\n", "\t", "=", "+", "-", "@", "'", " ", "a", "1", "é", "€", "😀"), maxLength: 6 }),
      { nil: null, freq: 5 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(text, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 20 }), async (rows) => {
        const width = Math.max(...rows.map((r) => r.length));
        const padded = rows.map((r) => [...r, ...Array<string | null>(width - r.length).fill(null)]);
        const columns = Array.from({ length: width }, (_, i) => Prisma.raw(`v.t${i}`));
        const values = Array.from({ length: width }, (_, i) => Prisma.sql`${padded.map((r) => r[i])}::text[]`);
        const got = await fx.db.$queryRaw<{ one: string[]; together: string }[]>`
          SELECT ARRAY[${Prisma.join(columns.map(csvCellSql))}] AS one, ${csvCellsSql(columns)} AS together
          FROM unnest(${Prisma.join(values)}) WITH ORDINALITY AS v(${Prisma.raw(columns.map((_, i) => `t${i}`).join(", "))}, n) ORDER BY n`;
        expect(got.map((r) => r.one)).toEqual(padded.map((r) => r.map(csvCell)));
        expect(got.map((r) => r.together)).toEqual(padded.map((r) => r.map(csvCell).join(",")));
      }),
      { numRuns: 60 },
    );
  });
});
