import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { opsgenieFake, pagerDutyFake } from "../fakes/on-call";
import type { Principal, StageSnapshot } from "@/lib/policy/evaluate";
import type { DomainError } from "@/lib/errors";

/**
 * On-call rules through the engine, against fakes of PagerDuty's and Opsgenie's REST APIs:
 * a request auto-approved because its requester is on call (the rule, schedule and shift in
 * the audit trail), an approver outside the stage's groups allowed because they are on
 * call, and every failed lookup (service down, rate limit, bad token) applying no rule.
 */

const pd = pagerDutyFake("pd-token");
const og = opsgenieFake("og-key");
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let sam: Principal, eve: Principal, ic: Principal, lead: Principal;
const hour = 3600_000;
const shift = (email: string) => ({
  email,
  start: new Date(Date.now() - hour).toISOString().replace(/\.\d+Z$/, "Z"),
  end: new Date(Date.now() + 7 * hour).toISOString().replace(/\.\d+Z$/, "Z"),
});

beforeAll(async () => {
  const [pdUrl, ogUrl] = [await pd.start(), await og.start()];
  fx = await engineFixture({
    LATCHKEY_POLICY_FILE: path.join(process.cwd(), "tests/fixtures/policy-integrations.yaml"),
    LATCHKEY_PAGERDUTY_TOKEN: "pd-token",
    LATCHKEY_PAGERDUTY_URL: pdUrl,
    LATCHKEY_OPSGENIE_TOKEN: "og-key",
    LATCHKEY_OPSGENIE_URL: ogUrl,
  });
  engine = await import("@/lib/approvals/engine");
  sam = await fx.user("sam@example.com", ["sre"]);
  eve = await fx.user("eve@example.com", ["engineering"]);
  ic = await fx.user("ic@example.com", ["incident-commanders"]);
  lead = await fx.user("lead@example.com", ["engineering-leads"]);
  pd.roster("PSCHED1", [shift("Sam@Example.com")]);
  pd.roster("POTHER", [shift("eve@example.com")]);
  og.roster("search-primary", ["sam@example.com"]);
}, 60_000);

afterAll(async () => {
  await fx?.close();
  await pd.stop();
  await og.stop();
});

const ask = (who: Principal, targetId: string, role = "read", durationMinutes = 30) =>
  engine.createRequest(who, "temporary-access", { targetId, role, durationMinutes, justification: "On-call work on the payments API" });
const events = (requestId: string, action: string) => fx.db.auditEvent.findMany({ where: { requestId, action }, orderBy: { id: "asc" } });

async function refusal(work: Promise<unknown>): Promise<DomainError> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, "expected a refusal").not.toBeNull();
  return error as DomainError;
}

describe("auto-approval for whoever is on call", () => {
  it("PagerDuty: approves the on-call requester, naming the rule, the schedule and the shift", async () => {
    const before = pd.requests.length;
    const request = await ask(sam, "pd-oncall");
    expect(request.status).toBe("active");
    expect(request.autoApprovedBy).toBe("pagerduty-on-call-read");
    const [approved] = await events(request.id, "request.auto_approved");
    const roster = shift("sam@example.com");
    expect(approved!.data).toMatchObject({ rule: "pagerduty-on-call-read", onCall: { provider: "pagerduty", schedule: "PSCHED1", email: "sam@example.com" } });
    const recorded = (approved!.data as { onCall: { start: string; end: string; checkedAt: string } }).onCall;
    expect(Math.abs(Date.parse(recorded.start) - Date.parse(roster.start))).toBeLessThan(60_000);
    expect(Math.abs(Date.parse(recorded.end) - Date.parse(roster.end))).toBeLessThan(60_000);
    const call = pd.requests[before]!;
    expect(call.path).toMatch(/^\/oncalls\?/);
    const query = new URLSearchParams(call.path.split("?")[1]);
    expect(query.getAll("schedule_ids[]")).toEqual(["PSCHED1"]);
    expect(query.getAll("include[]")).toEqual(["users"]);
    expect(call.authorization).toBe("Token token=pd-token");
    expect(call.accept).toBe("application/vnd.pagerduty+json;version=2");
  });

  it("leaves a requester who is not on call (or on call elsewhere) waiting for a person", async () => {
    const request = await ask(eve, "pd-oncall");
    expect(request.status).toBe("pending");
    expect(request.autoApprovedBy).toBeNull();
    expect(await events(request.id, "request.on_call_unknown")).toEqual([]);
  });

  it("asks nobody when the rule's other conditions do not hold", async () => {
    const before = pd.requests.length;
    const request = await ask(sam, "pd-oncall", "write");
    expect(request.status).toBe("pending");
    expect(pd.requests.length).toBe(before);
  });

  it("fails closed: PagerDuty down, rate-limiting or refusing the token approves nothing, and the trail says why", async () => {
    pd.setDown(true);
    try {
      const request = await ask(sam, "pd-oncall");
      expect(request.status).toBe("pending");
      const [unknown] = await events(request.id, "request.on_call_unknown");
      expect(unknown!.data).toEqual({ provider: "pagerduty", schedule: "PSCHED1", reason: "PagerDuty answered HTTP 503" });
    } finally {
      pd.setDown(false);
    }
    pd.rateLimit(1, 30);
    const limited = await ask(sam, "pd-oncall");
    expect(limited.status).toBe("pending");
    expect((await events(limited.id, "request.on_call_unknown"))[0]!.data).toMatchObject({
      reason: "PagerDuty is rate-limiting Latchkey (HTTP 429, retry after 30 s)",
    });

    const { env } = await import("@/lib/env");
    const config = env();
    Object.assign(config, { LATCHKEY_PAGERDUTY_TOKEN: "stale-token" });
    try {
      const refused = await ask(sam, "pd-oncall");
      expect(refused.status).toBe("pending");
      expect((await events(refused.id, "request.on_call_unknown"))[0]!.data).toMatchObject({ reason: "PagerDuty answered HTTP 401: Unauthorized" });
    } finally {
      Object.assign(config, { LATCHKEY_PAGERDUTY_TOKEN: "pd-token" });
    }
  });

  it("Opsgenie: approves the on-call requester by schedule name; a bad key or an unknown schedule approves nothing", async () => {
    const before = og.requests.length;
    const request = await ask(sam, "og-oncall");
    expect(request.status).toBe("active");
    const [approved] = await events(request.id, "request.auto_approved");
    expect(approved!.data).toMatchObject({
      rule: "opsgenie-on-call",
      onCall: {
        provider: "opsgenie",
        schedule: "search-primary",
        email: "sam@example.com",
        start: null,
        end: null,
        checkedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    });
    const call = og.requests[before]!;
    expect(call.path).toMatch(/^\/v2\/schedules\/search-primary\/on-calls\?/);
    expect(new URLSearchParams(call.path.split("?")[1]).get("scheduleIdentifierType")).toBe("name");
    expect(call.authorization).toBe("GenieKey og-key");

    expect((await ask(eve, "og-oncall")).status).toBe("pending");

    const { env } = await import("@/lib/env");
    Object.assign(env(), { LATCHKEY_OPSGENIE_TOKEN: "wrong-key" });
    try {
      const refused = await ask(sam, "og-oncall");
      expect(refused.status).toBe("pending");
      expect((await events(refused.id, "request.on_call_unknown"))[0]!.data).toMatchObject({
        provider: "opsgenie",
        reason: "Opsgenie answered HTTP 401: Could not authenticate",
      });
    } finally {
      Object.assign(env(), { LATCHKEY_OPSGENIE_TOKEN: "og-key" });
    }
    og.roster("search-primary", []);
    try {
      expect((await ask(sam, "og-oncall")).status).toBe("pending");
    } finally {
      og.roster("search-primary", ["sam@example.com"]);
    }
  });
});

describe("an on-call approver", () => {
  it("outside the stage's groups may approve only while on call, and the approval names the shift", async () => {
    const request = await ask(eve, "pd-oncall", "write");
    const notOnCall = await refusal(engine.decide(ic, { requestId: request.id, decision: "approve", comment: "covering" }));
    expect(notOnCall.code).toBe("forbidden");
    expect(notOnCall.message).toBe('Only members of engineering-leads, on-call:pagerduty:PSCHED1 may approve the stage "Approval".');

    // Being on call gives no approver role: a requester on call may not approve.
    const notApprover = await refusal(engine.decide(sam, { requestId: request.id, decision: "approve", comment: "on call" }));
    expect(notApprover.message).toBe("Your role does not allow approving requests.");

    const { getRequestView } = await import("@/lib/approvals/queries");
    pd.roster("PSCHED1", [shift("sam@example.com"), shift("ic@example.com")]);
    expect((await getRequestView(ic, request.id)).viewer.canDecide).toBe(true);

    pd.setDown(true);
    try {
      const down = await refusal(engine.decide(ic, { requestId: request.id, decision: "approve", comment: "covering" }));
      expect(down.message).toBe(
        'Only members of engineering-leads, on-call:pagerduty:PSCHED1 may approve the stage "Approval". (Whether you are on call could not be checked: PagerDuty answered HTTP 503.)',
      );
    } finally {
      pd.setDown(false);
    }

    const approved = await engine.decide(ic, { requestId: request.id, decision: "approve", comment: "covering as IC" });
    expect(approved.status).toBe("active");
    const [event] = await events(request.id, "request.approved");
    expect(event!.actorEmail).toBe("ic@example.com");
    expect(event!.data).toMatchObject({ comment: "covering as IC", onCall: { provider: "pagerduty", schedule: "PSCHED1", email: "ic@example.com" } });
    pd.roster("PSCHED1", [shift("sam@example.com")]);
  });

  it("uses an answer only for the stage it was asked for: a request that moved on during the lookup is decided as the person is at the new stage, naming no shift", async () => {
    const request = await ask(eve, "pd-oncall", "write");
    // A second stage after the on-call one, for incident commanders (ic's own group), in the request's own snapshot of its stages.
    const [first] = request.stages as unknown as StageSnapshot[];
    await fx.db.accessRequest.update({
      where: { id: request.id },
      data: { stages: [first!, { name: "Commander", groups: ["incident-commanders"], required: 1, oneFromEachGroup: false }] as never },
    });
    pd.roster("PSCHED1", [shift("sam@example.com"), shift("ic@example.com")]);
    try {
      // While PagerDuty is asked whether ic is on call for the first stage, a lead passes that stage.
      pd.onNextCall(async () => void (await engine.decide(lead, { requestId: request.id, decision: "approve", comment: "lead passes stage one" })));
      const decided = await engine.decide(ic, { requestId: request.id, decision: "approve", comment: "as commander" });
      expect(decided.status).toBe("active");
      const approvals = await fx.db.approval.findMany({ where: { requestId: request.id }, orderBy: { createdAt: "asc" } });
      expect(approvals.map((a) => [a.stage, a.approverId])).toEqual([
        [0, lead.id],
        [1, ic.id],
      ]);
      expect(approvals[1]!.approverGroups).toEqual(["incident-commanders"]);
      const [approved] = await events(request.id, "request.approved");
      expect(approved!.actorEmail).toBe("ic@example.com");
      expect(approved!.data).toMatchObject({ comment: "as commander", stage: "Commander" });
      expect(approved!.data).not.toHaveProperty("onCall");
    } finally {
      pd.roster("PSCHED1", [shift("sam@example.com")]);
    }
  });

  it("changes nothing for the stage's own approvers (no lookup), nor for the requester", async () => {
    const request = await ask(eve, "pd-oncall", "write");
    const before = pd.requests.length;
    pd.roster("PSCHED1", [shift("eve@example.com")]);
    try {
      expect((await refusal(engine.decide(eve, { requestId: request.id, decision: "approve", comment: "me" }))).message).toBe(
        "You cannot approve your own request.",
      );
      const approved = await engine.decide(lead, { requestId: request.id, decision: "approve", comment: "lead" });
      expect(approved.status).toBe("active");
      expect(pd.requests.length).toBe(before);
      expect((await events(request.id, "request.approved"))[0]!.data).not.toHaveProperty("onCall");
    } finally {
      pd.roster("PSCHED1", [shift("sam@example.com")]);
    }
  });
});
