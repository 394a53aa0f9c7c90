import type { AuditEvent } from "@prisma/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let history: typeof import("@/lib/history/search");
let schema: typeof import("@/lib/history/filters");
let all: AuditEvent[];
const ids: Record<string, string> = {};

/**
 * A known data set: requests by two people on several targets, decided by two approvers,
 * one break-glass, one approval without a comment, one distinctive justification.
 */
beforeAll(async () => {
  fx = await engineFixture();
  history = await import("@/lib/history/search");
  schema = await import("@/lib/history/filters");
  const engine = await import("@/lib/approvals/engine");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  const erin = await fx.user("erin@example.com", ["engineering", "oncall"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  const lee = await fx.user("lee@example.com", ["engineering-leads"]);
  const make = async (who: Principal, overrides: Record<string, unknown>, approver: Principal | null, comment = "ok") => {
    const r = await engine.createRequest(who, "temporary-access", validInput(overrides));
    if (approver)
      await engine.decide(approver, {
        requestId: r.id,
        decision: comment === "reject" ? "reject" : "approve",
        comment: comment === "reject" ? "not now" : comment,
      });
    return r.id;
  };
  ids.staging = await make(alice, {}, bob);
  ids.production = await make(
    alice,
    { targetId: "payments-api-production", durationMinutes: 60, justification: "Kraken migration needs a look at production payments" },
    lee,
  );
  ids.rejected = await make(erin, { targetId: "payments-api-staging" }, lee, "reject");
  ids.silent = await make(erin, { targetId: "payments-api-staging", role: "write" }, bob, "");
  ids.pending = await make(alice, { targetId: "scratch", durationMinutes: 30 }, null);
  ids.glass = (await engine.breakGlass(erin, "temporary-access", validInput({ targetId: "staged", durationMinutes: 20 }), "Pager: ledger writes failing")).id;
  ids.auto = await make(erin, { targetId: "sandbox", role: "read", durationMinutes: 30 }, null);
  all = await fx.db.auditEvent.findMany({ orderBy: { id: "desc" } });
});
afterAll(() => fx?.close());

async function everything(raw: Record<string, string>, pageSize = 3): Promise<string[]> {
  const query = schema.historyFiltersSchema.parse(raw);
  const seen: string[] = [];
  let page = await history.searchHistory(query, pageSize);
  for (;;) {
    seen.push(...page.events.map((e) => e.id.toString()));
    if (!page.next) return seen;
    page = await history.searchHistory({ ...query, after: BigInt(page.next) }, pageSize);
  }
}

const expected = (keep: (e: AuditEvent) => boolean) => all.filter(keep).map((e) => e.id.toString());
const requestsOf = (...keys: string[]) => new Set(keys.map((k) => ids[k]));

describe("history filters return exactly the right events", () => {
  it("each filter alone, read through every page", async () => {
    expect(await everything({})).toEqual(expected(() => true));
    expect(await everything({ actor: "ERIN@example.com" })).toEqual(expected((e) => e.actorEmail === "erin@example.com"));
    expect(await everything({ workflow: "temporary-access" })).toEqual(expected((e) => e.workflowId === "temporary-access"));
    expect(await everything({ target: "payments-api-production" })).toEqual(expected((e) => e.requestId === ids.production));
    expect(await everything({ environment: "staging" })).toEqual(
      expected((e) => ["staging", "silent", "rejected", "auto"].map((k) => ids[k]).includes(e.requestId!)),
    );
    expect(await everything({ status: "rejected" })).toEqual(expected((e) => e.toStatus === "rejected"));
    expect(await everything({ action: "request.break_glass" })).toEqual(expected((e) => e.action === "request.break_glass"));
    expect(await everything({ approver: "lee@example.com" })).toEqual(expected((e) => e.requestId === ids.production));
    expect(await everything({ q: "kraken" })).toEqual(expected((e) => e.requestId === ids.production && e.action === "request.created"));
    expect(await everything({ q: "ledger writes" })).toEqual(expected((e) => e.requestId === ids.glass && (e.note ?? "").includes("ledger writes")));
    const today = new Date().toISOString().slice(0, 10);
    expect(await everything({ from: today, to: today })).toEqual(expected(() => true));
    expect(await everything({ from: "2020-01-01", to: "2020-01-31" })).toEqual([]);
  });

  it("filters combined, and sorted oldest first", async () => {
    const staging = requestsOf("staging", "silent", "rejected", "auto");
    expect(await everything({ actor: "erin@example.com", environment: "staging", status: "active" })).toEqual(
      expected((e) => e.actorEmail === "erin@example.com" && staging.has(e.requestId!) && e.toStatus === "active"),
    );
    expect(await everything({ approver: "bob@example.com", action: "request.created" })).toEqual(
      expected((e) => requestsOf("staging", "silent").has(e.requestId!) && e.action === "request.created"),
    );
    expect(await everything({ sort: "oldest", target: "payments-api-staging" })).toEqual(expected((e) => e.targetId === "payments-api-staging").reverse());
    expect(await everything({ actor: "nobody@example.com" })).toEqual([]);
  });

  it("pages back and forth, and jumps to the last page, with keyset cursors", async () => {
    const query = schema.historyFiltersSchema.parse({});
    const first = await history.searchHistory(query, 4);
    expect(first.previous).toBeNull();
    const second = await history.searchHistory({ ...query, after: BigInt(first.next!) }, 4);
    expect(second.events.map((e) => e.id.toString())).toEqual(all.slice(4, 8).map((e) => e.id.toString()));
    const back = await history.searchHistory({ ...query, before: BigInt(second.previous!) }, 4);
    expect(back.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
    expect(back.previous).toBeNull();
    const last = await history.searchHistory({ ...query, end: "last" }, 4);
    expect(last.events.map((e) => e.id.toString())).toEqual(all.slice(-4).map((e) => e.id.toString()));
    expect(last.next).toBeNull();
    expect(last.previous).not.toBeNull();
  });
});

describe("exports", () => {
  async function read(stream: ReadableStream<Uint8Array>): Promise<string> {
    return new Response(stream).text();
  }

  it("CSV matches the filtered view row for row, with the filter and the chain result in its header", async () => {
    const { exportStream } = await import("@/lib/history/export");
    const { verifyAuditChain } = await import("@/lib/audit/verify");
    const verification = await verifyAuditChain("manual");
    const query = schema.historyFiltersSchema.parse({ environment: "staging", sort: "newest" });
    const text = await read(exportStream("csv", schema.filtersOf(query), "carol@example.com", verification, "newest"));
    const lines = text.trimEnd().split("\r\n");
    expect(lines[0]).toBe("# Latchkey audit export");
    const header = JSON.parse(lines[1]!.slice(2));
    expect(header).toMatchObject({
      generatedBy: "carol@example.com",
      filters: { environment: "staging" },
      chain: { ok: true, upToSeq: verification.lastSeq!.toString() },
    });
    expect(lines[2]!.split(",").slice(0, 3)).toEqual(["seq", "id", "occurredAt"]);
    const exportedIds = lines.slice(3).map((l) => l.split(",")[1]);
    expect(exportedIds).toEqual(await everything({ environment: "staging" }));
  });

  it("JSON Lines matches too, in batches, and defuses nothing it does not need to", async () => {
    const { exportStream } = await import("@/lib/history/export");
    const text = await read(exportStream("jsonl", {}, "carol@example.com", null));
    const [head, ...rows] = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(head).toMatchObject({ type: "export", chain: { verified: false } });
    expect(rows.map((r) => r.id)).toEqual(expected(() => true).reverse());
    const created = rows.find((r) => r.requestId === ids.production && r.action === "request.created");
    expect(created.note).toBe("Kraken migration needs a look at production payments");
  });

  it("CSV cells are quoted and formula-like values are defused", async () => {
    const { csvCell } = await import("@/lib/history/export");
    expect(csvCell('say "hi", then\nleave')).toBe('"say ""hi"", then\nleave"');
    expect(csvCell('=HYPERLINK("http://x")')).toBe('"\'=HYPERLINK(""http://x"")"');
    expect(csvCell("+1")).toBe("'+1");
    expect(csvCell(null)).toBe("");
    // A locale that separates cells with ";" must not split a cell there and start a formula after it.
    expect(csvCell("Mozilla;=cmd|' /C calc'!A0")).toBe(`"Mozilla;=cmd|' /C calc'!A0"`);
    const { csvCommentJson } = await import("@/lib/history/export");
    const header = csvCommentJson({ filters: { q: "x;=HYPERLINK(1)" } });
    expect(header).not.toContain(";");
    expect(JSON.parse(header.slice(2))).toEqual({ filters: { q: "x;=HYPERLINK(1)" } });
  });
});

describe("per-person view", () => {
  it("shows what a person requested, decided and held", async () => {
    const { personActivity } = await import("@/lib/history/person");
    const lee = (await personActivity("lee@example.com"))!;
    expect(lee.requested).toEqual([]);
    expect(lee.decided.map((d) => [d.request.id, d.decision])).toEqual([
      [ids.rejected, "reject"],
      [ids.production, "approve"],
    ]);
    const erin = (await personActivity("erin@example.com"))!;
    expect(new Set(erin.requested.map((r) => r.id))).toEqual(requestsOf("rejected", "silent", "glass", "auto"));
    expect(new Set(erin.held.map((r) => r.id))).toEqual(requestsOf("silent", "glass", "auto"));
    expect(erin.events).toBe(all.filter((e) => e.actorEmail === "erin@example.com").length);
    expect(await personActivity("nobody@example.com")).toBeNull();
  });
});

describe("access review", () => {
  it("lists every grant active in the period with approvers, duration and flags", async () => {
    const { accessReview, reviewPeriodSchema } = await import("@/lib/history/review");
    const today = new Date().toISOString().slice(0, 10);
    const review = await accessReview(reviewPeriodSchema.parse({ from: today, to: today }));
    const byId = new Map(review.grants.map((g) => [g.requestId, g]));
    expect([...byId.keys()].sort()).toEqual([ids.staging, ids.production, ids.silent, ids.glass, ids.auto].sort());
    expect(byId.get(ids.production!)).toMatchObject({
      requester: "alice@example.com",
      approvedBy: [{ email: "lee@example.com", comment: "ok" }],
      breakGlass: false,
      noApproverComment: false,
    });
    expect(byId.get(ids.silent!)).toMatchObject({ approvedBy: [{ email: "bob@example.com", comment: "" }], noApproverComment: true });
    expect(byId.get(ids.glass!)).toMatchObject({ breakGlass: true, breakGlassReason: "Pager: ledger writes failing", reviewedAt: null });
    expect(byId.get(ids.auto!)).toMatchObject({ autoApprovedBy: "sandbox-read-under-1h", approvedBy: [] });
    expect(review.totals).toMatchObject({ grants: 5, people: 2, breakGlass: 1, breakGlassUnreviewed: 1, noApproverComment: 1, autoApproved: 1 });
    expect(review.perDay).toEqual([{ day: today, active: 5 }]);
    expect(review.perTarget.find((t) => t.targetId === "payments-api-staging")).toMatchObject({ grants: 2 });
    const earlier = await accessReview(reviewPeriodSchema.parse({ from: "2020-01-01", to: "2020-01-31" }));
    expect(earlier.grants).toEqual([]);
    expect(earlier.perDay).toHaveLength(31);
  });

  it("refuses a period that is backwards or longer than a year", async () => {
    const { reviewPeriodSchema } = await import("@/lib/history/review");
    expect(reviewPeriodSchema.safeParse({ from: "2026-02-01", to: "2026-01-01" }).error!.issues[0]!.message).toBe("The start date is after the end date.");
    expect(reviewPeriodSchema.safeParse({ from: "2024-01-01", to: "2026-01-01" }).error!.issues[0]!.message).toBe("A review covers a year at most.");
  });
});
