import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { jiraFake } from "../fakes/jira";
import type { Principal } from "@/lib/policy/evaluate";
import type { DomainError } from "@/lib/errors";

/**
 * Ticket references through the engine: a target that needs one refuses a justification
 * without it, a Jira-checked target refuses a closed, unknown or uncheckable ticket (fail
 * closed), a generic HTTP check does the same, and the ticket shows as a link on the
 * request's view, in the access review and in the audit export.
 */

const jira = jiraFake({ email: "latchkey@example.com", token: "jira-api-token" });
/** A ticket system of one's own: 404 for unknown keys, 200 {open, status} otherwise. */
const tickets = new Map<string, { open: boolean; status: string }>();
const checkCalls: { path: string; authorization?: string }[] = [];
const checkServer = http.createServer((req, res) => {
  checkCalls.push({ path: req.url ?? "", authorization: req.headers.authorization });
  if (req.headers.authorization !== "Bearer check-token") return void res.writeHead(401, { "content-type": "application/json" }).end('{"message":"bad token"}');
  const key = decodeURIComponent((req.url ?? "").split("/").pop() ?? "");
  const ticket = tickets.get(key);
  if (!ticket) return void res.writeHead(404, { "content-type": "application/json" }).end('{"message":"no such ticket"}');
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(ticket));
});

let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let eve: Principal, lead: Principal;

beforeAll(async () => {
  const jiraUrl = await jira.start();
  await new Promise<void>((resolve) => checkServer.listen(0, "127.0.0.1", resolve));
  fx = await engineFixture({
    LATCHKEY_POLICY_FILE: path.join(process.cwd(), "tests/fixtures/policy-integrations.yaml"),
    TEST_JIRA_URL: jiraUrl,
    TEST_JIRA_USER: "latchkey@example.com",
    TEST_JIRA_TOKEN: "jira-api-token",
    TEST_TICKET_CHECK_URL: `http://127.0.0.1:${(checkServer.address() as AddressInfo).port}/tickets/{key}`,
    TEST_TICKET_CHECK_TOKEN: "check-token",
  });
  engine = await import("@/lib/approvals/engine");
  eve = await fx.user("eve@example.com", ["engineering"]);
  lead = await fx.user("lead@example.com", ["engineering-leads"]);
  jira.issue("CHG-45", { summary: "Rotate payment keys", status: "In Progress", category: "indeterminate" });
  jira.issue("INC-7", { summary: "Old outage", status: "Closed", category: "done" });
  jira.issue("INC-8", { summary: "Fresh outage", status: "Open", category: "new" });
  tickets.set("OPS-1", { open: true, status: "open" });
  tickets.set("OPS-2", { open: false, status: "resolved" });
}, 60_000);

afterAll(async () => {
  await fx?.close();
  await jira.stop();
  await new Promise((resolve) => {
    checkServer.close(resolve);
    checkServer.closeAllConnections();
  });
});

const ask = (targetId: string, justification: string) =>
  engine.createRequest(eve, "temporary-access", { targetId, role: "read", durationMinutes: 30, justification });

async function refusal(work: Promise<unknown>): Promise<DomainError> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, "expected a refusal").not.toBeNull();
  return error as DomainError;
}

describe("a ticket pattern", () => {
  it("refuses a justification without a matching ticket, naming the pattern and an example, on the justification field", async () => {
    const error = await refusal(ask("pattern-only", "Need to look at the payments logs"));
    expect(error.code).toBe("invalid");
    expect(error.message).toBe("pattern-only target needs a ticket reference such as INC-123 in the justification (matching (INC|CHG)-[0-9]+).");
    expect(error.fieldErrors?.justification).toBe(error.message);
    // A key that only contains the pattern (XINC-1, INC-1a) is not a ticket reference.
    expect((await refusal(ask("pattern-only", "See XINC-12 and INC-12a"))).code).toBe("invalid");
    expect(await fx.db.accessRequest.count({ where: { targetId: "pattern-only" } })).toBe(0);
  });

  it("records the first matching ticket with its link, and names it in the audit trail", async () => {
    const request = await ask("pattern-only", "Rolling back after INC-42 (see also CHG-9)");
    expect(request).toMatchObject({ ticketKey: "INC-42", ticketUrl: "https://tickets.example.com/browse/INC-42", status: "pending" });
    const created = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, action: "request.created" } });
    expect(created.data).toMatchObject({ ticket: "INC-42", ticketUrl: "https://tickets.example.com/browse/INC-42" });
  });

  it("leaves targets without a ticket rule alone", async () => {
    const request = await ask("no-ticket", "Checking the sandbox");
    expect(request.ticketKey).toBeNull();
  });
});

describe("a ticket checked in Jira", () => {
  it("accepts an open ticket, asking Jira with basic auth for the status only, and links to Jira's browse page", async () => {
    const before = jira.requests.length;
    const request = await ask("jira-checked", "Key rotation under CHG-45");
    expect(request).toMatchObject({ ticketKey: "CHG-45", ticketUrl: `${process.env.TEST_JIRA_URL}/browse/CHG-45` });
    const call = jira.requests[before]!;
    expect(call.path).toBe("/rest/api/3/issue/CHG-45?fields=status,summary");
    expect(call.authorization).toBe(`Basic ${Buffer.from("latchkey@example.com:jira-api-token").toString("base64")}`);
    expect((await ask("jira-checked", "New incident INC-8")).ticketKey).toBe("INC-8");
  });

  it("refuses a closed ticket with a clear message, and makes no request", async () => {
    const error = await refusal(ask("jira-checked", "Follow-up on INC-7"));
    expect(error.code).toBe("invalid");
    expect(error.message).toBe('Ticket INC-7 is closed in Jira (status "Closed"). payments database (production) needs an open ticket.');
    expect(error.fieldErrors?.justification).toBe(error.message);
    expect(await fx.db.accessRequest.count({ where: { ticketKey: "INC-7" } })).toBe(0);
  });

  it("refuses a ticket Jira does not know", async () => {
    const error = await refusal(ask("jira-checked", "Working on INC-9999"));
    expect(error.message).toBe("Ticket INC-9999 does not exist in Jira (or Latchkey may not see it). Give an existing ticket.");
  });

  it("waits out a short Retry-After once, and refuses (fail closed) when Jira keeps limiting or refuses the credentials", async () => {
    jira.rateLimit(1, 1);
    const started = Date.now();
    expect((await ask("jira-checked", "CHG-45 again")).ticketKey).toBe("CHG-45");
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);

    jira.rateLimit(1, 60);
    const limited = await refusal(ask("jira-checked", "CHG-45 once more"));
    expect(limited.code).toBe("conflict");
    expect(limited.message).toBe(
      "Ticket CHG-45 could not be checked in Jira, so the request was not made: Jira is rate-limiting Latchkey (HTTP 429, retry after 60 s). Try again later.",
    );

    process.env.TEST_JIRA_TOKEN = "revoked-token";
    try {
      const denied = await refusal(ask("jira-checked", "CHG-45 with a bad token"));
      expect(denied.message).toContain("Jira answered HTTP 401: You are not authenticated.");
      expect(denied.message).not.toContain("revoked-token");
    } finally {
      process.env.TEST_JIRA_TOKEN = "jira-api-token";
    }
  });

  it("refuses (fail closed) when Jira cannot be reached", async () => {
    const url = process.env.TEST_JIRA_URL!;
    process.env.TEST_JIRA_URL = "http://127.0.0.1:9"; // discard port: nothing listens
    try {
      const error = await refusal(ask("jira-checked", "CHG-45 while Jira is down"));
      expect(error.code).toBe("conflict");
      expect(error.message).toMatch(/^Ticket CHG-45 could not be checked in Jira, so the request was not made: Jira could not be reached/);
    } finally {
      process.env.TEST_JIRA_URL = url;
    }
  });
});

describe("a ticket checked over HTTP", () => {
  it("accepts an open ticket with the bearer token, refuses a resolved or unknown one", async () => {
    expect((await ask("http-checked", "Ledger fix OPS-1")).ticketKey).toBe("OPS-1");
    expect(checkCalls.at(-1)).toEqual({ path: "/tickets/OPS-1", authorization: "Bearer check-token" });
    expect((await refusal(ask("http-checked", "Ledger fix OPS-2"))).message).toBe(
      'Ticket OPS-2 is closed in the ticket system (status "resolved"). ledger (production) needs an open ticket.',
    );
    expect((await refusal(ask("http-checked", "Ledger fix OPS-3"))).message).toMatch(/^Ticket OPS-3 does not exist in the ticket system/);
  });
});

describe("the ticket after the request", () => {
  it("is on the request's view, in the access review (page data and CSV row) and in the audit export", async () => {
    const request = await ask("jira-checked", "Payments key rotation, CHG-45");
    await engine.decide(lead, { requestId: request.id, decision: "approve", comment: "ok" });
    const { getRequestView } = await import("@/lib/approvals/queries");
    const view = await getRequestView(eve, request.id);
    expect(view).toMatchObject({ ticketKey: "CHG-45", ticketUrl: `${process.env.TEST_JIRA_URL}/browse/CHG-45` });

    const { accessReview, reviewRow, reviewPeriodSchema } = await import("@/lib/history/review");
    const today = new Date().toISOString().slice(0, 10);
    const review = await accessReview(reviewPeriodSchema.parse({ from: today, to: today }));
    const grant = review.grants.find((g) => g.requestId === request.id)!;
    expect(grant).toMatchObject({ ticket: "CHG-45", ticketUrl: `${process.env.TEST_JIRA_URL}/browse/CHG-45` });
    expect(reviewRow(grant)).toMatchObject({ ticket: "CHG-45" });

    const { exportStream } = await import("@/lib/history/export");
    const lines = (await new Response(exportStream("jsonl", {}, "auditor@example.com", null)).text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    const created = lines.find((l) => l.requestId === request.id && l.action === "request.created");
    expect(created.data).toMatchObject({ ticket: "CHG-45", ticketUrl: `${process.env.TEST_JIRA_URL}/browse/CHG-45` });
  });
});
