import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";

/**
 * The auditor's filters (history page, export, access review) under hostile query
 * parameters, run against a real PostgreSQL: every value either is refused by the schema
 * with a message, or runs as a query. Nothing the schema lets through may make PostgreSQL
 * fail, because an export has already answered 200 by the time its rows are read.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let lib: {
  historyFiltersSchema: typeof import("@/lib/history/filters").historyFiltersSchema;
  filtersOf: typeof import("@/lib/history/filters").filtersOf;
  searchHistory: typeof import("@/lib/history/search").searchHistory;
  historyRows: typeof import("@/lib/history/rows").historyRows;
  reviewPeriodSchema: typeof import("@/lib/history/review").reviewPeriodSchema;
  accessReview: typeof import("@/lib/history/review").accessReview;
};

beforeAll(async () => {
  fx = await engineFixture();
  const engine = await import("@/lib/approvals/engine");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  await engine.createRequest(alice, "temporary-access", validInput());
  lib = {
    ...(await import("@/lib/history/filters")),
    ...(await import("@/lib/history/search")),
    ...(await import("@/lib/history/rows")),
    ...(await import("@/lib/history/review")),
  };
});
afterAll(async () => {
  await fx?.close();
});

/** What URLSearchParams hands over: any text, NUL and U+FFFD included (it decodes lone surrogates to U+FFFD). */
const text = fc.oneof(
  fc.constantFrom(
    "\u0000",
    "a\u0000b",
    "\uFFFD",
    "'",
    "\\",
    "a:*",
    "!(",
    "a <-> b",
    '"unclosed',
    "x".repeat(200),
    "x".repeat(201),
    "__proto__",
    "constructor",
    "%",
  ),
  fc.string({ maxLength: 40, unit: "binary" }),
);
const date = fc.oneof(
  fc.constantFrom("0000-01-01", "0001-01-01", "1969-12-31", "1970-01-01", "2026-02-30", "2026-13-01", "9999-12-30", "9999-12-31", "4713-01-01", "2026-11-25"),
  fc.date({ min: new Date(Date.UTC(-5000, 0, 1)), max: new Date(Date.UTC(20000, 0, 1)), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
);
const filters = fc.record(
  {
    actor: text,
    approver: text,
    workflow: text,
    target: text,
    environment: text,
    status: text,
    action: text,
    q: text,
    from: date,
    to: date,
    sort: fc.constantFrom("newest", "oldest", "x"),
  },
  { requiredKeys: [] },
);

describe("history filters under hostile query parameters", () => {
  it("are refused with a message, or run on PostgreSQL without failing (page and export)", async () => {
    await fc.assert(
      fc.asyncProperty(filters, async (raw) => {
        const parsed = lib.historyFiltersSchema.safeParse(raw);
        if (!parsed.success) {
          for (const issue of parsed.error.issues) expect(issue.message).toMatch(/^[A-Z].+\.$/);
          return;
        }
        await lib.searchHistory(parsed.data, 5);
        for await (const batch of lib.historyRows(lib.filtersOf(parsed.data), "oldest", 50)) expect(Array.isArray(batch)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("refuse NUL in a search and days PostgreSQL has no room for, by name", () => {
    const messages = (raw: Record<string, string>) =>
      (lib.historyFiltersSchema.safeParse(raw).error?.issues ?? []).map((i) => `${String(i.path[0])}: ${i.message}`);
    expect(messages({ q: "payments\u0000" })).toEqual(["q: Text may not contain NUL characters or broken Unicode (unpaired surrogates)."]);
    expect(messages({ actor: "\u0000" })).toEqual(["actor: Text may not contain NUL characters or broken Unicode (unpaired surrogates)."]);
    expect(messages({ from: "0000-01-01" })).toEqual(["from: Use a date between 1970-01-01 and 9999-12-30."]);
    expect(messages({ to: "9999-12-31" })).toEqual(["to: Use a date between 1970-01-01 and 9999-12-30."]);
    expect(messages({ from: "2026-02-30" })).toEqual(["from: That date does not exist."]);
    expect(messages({ from: "2026-11-01", to: "2026-11-30" })).toEqual([]);
  });

  it("the access review's period is held to the same days, and a valid one runs", async () => {
    await fc.assert(
      fc.asyncProperty(date, date, async (from, to) => {
        const parsed = lib.reviewPeriodSchema.safeParse({ from, to });
        if (parsed.success) expect((await lib.accessReview(parsed.data)).grants).toBeDefined();
      }),
      { numRuns: 60 },
    );
    expect(lib.reviewPeriodSchema.safeParse({ from: "0000-01-01", to: "0000-02-01" }).error?.issues.map((i) => i.message)).toEqual([
      "Use a date between 1970-01-01 and 9999-12-30.",
      "Use a date between 1970-01-01 and 9999-12-30.",
    ]);
  });
});
