import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal, bob: Principal, bob2: Principal, dave: Principal, sam: Principal, duo: Principal, olly: Principal;

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  bob2 = await fx.user("bob2@example.com", ["engineering-leads"]);
  dave = await fx.user("dave@example.com", ["platform-admins"]);
  sam = await fx.user("sam@example.com", ["security"]);
  duo = await fx.user("duo@example.com", ["platform-admins", "security"]);
  olly = await fx.user("olly@example.com", ["oncall"]);
});
afterAll(() => fx?.close());

const actions = async (requestId: string) => (await fx.db.auditEvent.findMany({ where: { requestId }, orderBy: { id: "asc" } })).map((e) => e.action);
const staged = (overrides: Record<string, unknown> = {}) => validInput({ targetId: "staged", durationMinutes: 30, ...overrides });

describe("approval stages", () => {
  it("run in order: stage two opens only after stage one, and needs one approver from each group", async () => {
    const request = await engine.createRequest(alice, "temporary-access", staged());
    await expect(engine.decide(dave, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: 'Only members of engineering-leads may approve the stage "Team lead".',
    });
    const afterLead = await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "lead ok" });
    expect(afterLead).toMatchObject({ status: "pending", currentStage: 1, currentStageGroups: ["platform-admins", "security"] });
    await expect(engine.decide(bob2, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({ code: "forbidden" });

    expect((await engine.decide(dave, { requestId: request.id, decision: "approve", comment: "platform ok" })).status).toBe("pending");
    // duo is in both groups but platform-admins is covered: they count for security.
    const done = await engine.decide(duo, { requestId: request.id, decision: "approve", comment: "security ok" });
    expect(done.status).toBe("active");
    expect(await actions(request.id)).toEqual([
      "request.created",
      "request.stage_passed",
      "request.approval_recorded",
      "request.approved",
      "request.executing",
      "credential.issued",
      "grant.activated",
    ]);
    const decisions = await fx.db.approval.findMany({ where: { requestId: request.id }, orderBy: { createdAt: "asc" } });
    expect(decisions.map((d) => [d.stage, d.approverGroups])).toEqual([
      [0, ["engineering-leads"]],
      [1, ["platform-admins"]],
      [1, ["platform-admins", "security"]],
    ]);
  });

  it("refuses a second approver from a group already covered, naming the missing group", async () => {
    const request = await engine.createRequest(alice, "temporary-access", staged());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    await engine.decide(dave, { requestId: request.id, decision: "approve", comment: "" });
    const dave2 = await fx.user("dave2@example.com", ["platform-admins"]);
    await expect(engine.decide(dave2, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({
      message: 'The stage "Platform and security" still needs an approver from security.',
    });
    expect((await engine.decide(sam, { requestId: request.id, decision: "approve", comment: "" })).status).toBe("active");
  });

  it("a denial at any stage ends the request at once", async () => {
    const request = await engine.createRequest(alice, "temporary-access", staged());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    const rejected = await engine.decide(sam, { requestId: request.id, decision: "reject", comment: "not during the freeze" });
    expect(rejected.status).toBe("rejected");
    await expect(engine.decide(dave, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({ code: "conflict" });
    expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(0);
  });

  it("the request page lists each stage with who approved and who is still eligible", async () => {
    const { getRequestView } = await import("@/lib/approvals/queries");
    const request = await engine.createRequest(alice, "temporary-access", staged());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    const view = await getRequestView(alice, request.id);
    expect(view.stageViews.map((s) => ({ name: s.name, state: s.state, approvedBy: s.approvedBy, eligible: s.eligible }))).toEqual([
      { name: "Team lead", state: "passed", approvedBy: ["bob@example.com"], eligible: [] },
      {
        name: "Platform and security",
        state: "current",
        approvedBy: [],
        eligible: ["dave2@example.com", "dave@example.com", "duo@example.com", "sam@example.com"],
      },
    ]);
    const asDave = await getRequestView(dave, request.id);
    expect(asDave.viewer.canDecide).toBe(true);
    const asBob2 = await getRequestView(bob2, request.id);
    expect(asBob2.viewer.canDecide).toBe(false);
  });
});

describe("auto-approval", () => {
  it("approves a matching request at once and names the rule in the audit trail", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "sandbox", role: "read", durationMinutes: 60 }));
    expect(request).toMatchObject({ status: "active", autoApprovedBy: "sandbox-read-under-1h" });
    const approved = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, action: "request.auto_approved" } });
    expect(approved).toMatchObject({ actorType: "system", fromStatus: "pending", toStatus: "approved", data: { rule: "sandbox-read-under-1h" } });
    expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(1);
    expect(await fx.db.approval.count({ where: { requestId: request.id } })).toBe(0);
  });

  it("leaves a request that matches no rule waiting for people", async () => {
    const write = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "sandbox", role: "write", durationMinutes: 60 }));
    const long = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "sandbox", role: "read", durationMinutes: 61 }));
    expect([write.status, long.status]).toEqual(["pending", "pending"]);
    expect(
      (await engine.createRequest(olly, "temporary-access", validInput({ targetId: "sandbox", role: "write", durationMinutes: 240 }))).autoApprovedBy,
    ).toBe("oncall-anything");
  });
});

describe("break-glass", () => {
  it("opens an emergency grant at once with a reason, flagged, and open until an approver reviews it", async () => {
    const { reviewsFor } = await import("@/lib/approvals/queries");
    const request = await engine.breakGlass(olly, "temporary-access", staged({ durationMinutes: 20 }), "Payments down, INC-9 sev1");
    expect(request).toMatchObject({ status: "active", breakGlass: true, breakGlassReason: "Payments down, INC-9 sev1", reviewedAt: null });
    expect(await actions(request.id)).toContain("request.break_glass");
    expect((await reviewsFor(dave)).map((r) => r.id)).toContain(request.id);

    await expect(engine.reviewBreakGlass(olly, { requestId: request.id, comment: "fine" })).rejects.toMatchObject({
      code: "forbidden",
      message: "You cannot review your own break-glass grant.",
    });
    await expect(engine.reviewBreakGlass(alice, { requestId: request.id, comment: "fine" })).rejects.toMatchObject({ code: "forbidden" });
    await expect(engine.reviewBreakGlass(dave, { requestId: request.id, comment: " " })).rejects.toMatchObject({ code: "invalid" });
    const reviewed = await engine.reviewBreakGlass(dave, { requestId: request.id, comment: "Checked INC-9 timeline; justified." });
    expect(reviewed.reviewedById).toBe(dave.id);
    await expect(engine.reviewBreakGlass(bob, { requestId: request.id, comment: "again" })).rejects.toMatchObject({ code: "conflict" });
    expect((await reviewsFor(dave)).map((r) => r.id)).not.toContain(request.id);
    expect(await fx.db.auditEvent.count({ where: { requestId: request.id, action: "break_glass.reviewed", actorEmail: "dave@example.com" } })).toBe(1);
  });

  it("is refused without a reason, outside its groups, beyond its maximum, and where not enabled", async () => {
    await expect(engine.breakGlass(olly, "temporary-access", staged(), "")).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { reason: expect.any(String) },
    });
    await expect(engine.breakGlass(alice, "temporary-access", staged(), "Payments down, INC-9 sev1")).rejects.toMatchObject({
      code: "forbidden",
      message: "Only members of oncall may use break-glass access here.",
    });
    await expect(engine.breakGlass(olly, "temporary-access", staged({ durationMinutes: 45 }), "Payments down, INC-9 sev1")).rejects.toMatchObject({
      code: "forbidden",
      message: "Break-glass access lasts at most 30m here.",
    });
    await expect(engine.breakGlass(olly, "temporary-access", validInput({ targetId: "sandbox" }), "Payments down, INC-9 sev1")).rejects.toMatchObject({
      code: "forbidden",
    });
  });
});

describe("pending requests expire", () => {
  it("a request nobody decided on in time expires, by the sweep and by its own job", async () => {
    const { startWorker } = await import("@/lib/jobs/worker");
    const stale = await engine.createRequest(alice, "temporary-access", staged());
    expect(stale.pendingExpiresAt!.getTime() - stale.createdAt.getTime()).toBe(2 * 3600_000);
    expect(await engine.expirePending(stale.id)).toBe("not-due");
    expect(await engine.sweepExpiredGrants(new Date(stale.pendingExpiresAt!.getTime() + 1000))).toBeGreaterThanOrEqual(1);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: stale.id } })).status).toBe("expired");
    expect(await fx.db.auditEvent.findFirst({ where: { requestId: stale.id, action: "request.timed_out" } })).toMatchObject({
      actorType: "system",
      fromStatus: "pending",
      toStatus: "expired",
    });
    await expect(engine.decide(bob, { requestId: stale.id, decision: "approve", comment: "" })).rejects.toMatchObject({ code: "conflict" });

    // The worker's own job: make a request due in a second.
    const soon = await engine.createRequest(alice, "temporary-access", staged());
    await fx.db.accessRequest.update({ where: { id: soon.id }, data: { pendingExpiresAt: new Date(Date.now() + 1000) } });
    const { queueInTransaction, QUEUES } = await import("@/lib/jobs/queue");
    await fx.db.$transaction((tx) => queueInTransaction(tx, [{ queue: QUEUES.expirePending, requestId: soon.id, at: new Date(Date.now() + 1000) }]));
    const worker = await startWorker(fx.url, { pollingIntervalSeconds: 0.5 });
    try {
      await expect
        .poll(async () => (await fx.db.accessRequest.findUniqueOrThrow({ where: { id: soon.id } })).status, { timeout: 15_000, interval: 250 })
        .toBe("expired");
    } finally {
      await worker.stop({ graceful: false, wait: true });
    }
  });
});

describe("a workflow without an executor", () => {
  const restart = (targetId: string) => ({
    targetId,
    runId: "scheduled__2026-11-25T00:00:00+00:00",
    scope: ["failed-tasks"],
    justification: "Settlement run failed on a transient DB error",
  });

  it("is refused before anyone approves it, with the reason, and nothing is written", async () => {
    const before = await fx.db.accessRequest.count();
    await expect(engine.createRequest(alice, "restart-job", restart("settlement-dag"))).rejects.toMatchObject({
      code: "conflict",
      message:
        "Restart a job on settlement DAG is unavailable: settlement DAG has no Airflow connection in the policy. It cannot be requested until an admin sets it up.",
    });
    expect(await fx.db.accessRequest.count()).toBe(before);
  });

  it("fails cleanly on approval when its configuration went away after the request: recorded, audited, nothing granted, never a fake success", async () => {
    const airflow = { TEST_AIRFLOW_URL: "http://127.0.0.1:1", TEST_AIRFLOW_USER: "latchkey", TEST_AIRFLOW_PASSWORD: "unused" };
    Object.assign(process.env, airflow);
    const request = await engine.createRequest(alice, "restart-job", restart("settlement-airflow"));
    expect(request).toMatchObject({ status: "pending", durationSeconds: 0 });
    expect((await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "go" })).status).toBe("executing");
    for (const name of Object.keys(airflow)) delete process.env[name];
    expect(await engine.performQueued(request.id, false)).toBe("failed");
    const failed = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
    expect(failed.status).toBe("failed");
    expect(failed.failureReason).toBe(
      "TEST_AIRFLOW_URL, TEST_AIRFLOW_USER and TEST_AIRFLOW_PASSWORD must be set to reach Airflow for settlement DAG (Airflow).",
    );
    expect(await actions(request.id)).toEqual(["request.created", "request.approved", "request.executing", "request.failed"]);
    expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(0);
  });
});

describe("extending an active grant", () => {
  it("is a new request under the same policy that, once approved, replaces the grant", async () => {
    const parent = await engine.createRequest(
      alice,
      "temporary-access",
      validInput({ targetId: "payments-api-production", durationMinutes: 30, role: "write" }),
    );
    await engine.decide(bob, { requestId: parent.id, decision: "approve", comment: "" });
    await expect(engine.requestExtension(bob, { requestId: parent.id, durationMinutes: 60, justification: "need more time for CHG-1" })).rejects.toMatchObject({
      code: "forbidden",
    });
    await expect(
      engine.requestExtension(alice, { requestId: parent.id, durationMinutes: 600, justification: "need more time for CHG-1" }),
    ).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { durationMinutes: "Duration must be between 15m and 2h for payments-api (production)." },
    });
    const extension = await engine.requestExtension(alice, { requestId: parent.id, durationMinutes: 60, justification: "need more time for CHG-1" });
    expect(extension).toMatchObject({
      status: "pending",
      extendsRequestId: parent.id,
      durationSeconds: 3600,
      input: { role: "write", targetId: "payments-api-production" },
    });
    await expect(engine.requestExtension(alice, { requestId: parent.id, durationMinutes: 60, justification: "need more time again" })).rejects.toMatchObject({
      code: "conflict",
    });
    // Still the same policy: the requester cannot approve it.
    await expect(engine.decide(alice, { requestId: extension.id, decision: "approve", comment: "" })).rejects.toMatchObject({ code: "forbidden" });

    const approvedAt = Date.now();
    const active = await engine.decide(bob, { requestId: extension.id, decision: "approve", comment: "ok" });
    expect(active.status).toBe("active");
    expect(active.expiresAt!.getTime()).toBeGreaterThanOrEqual(approvedAt + 3600_000 - 1000);
    const replaced = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: parent.id } });
    expect(replaced.status).toBe("revoked");
    expect(await actions(parent.id)).toContain("grant.extension_requested");
    expect((await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: parent.id, action: "grant.revoked" } })).data).toEqual({
      reason: `replaced by extension ${extension.id}`,
    });
    expect((await fx.db.credential.findUniqueOrThrow({ where: { requestId: parent.id } })).revokedAt).not.toBeNull();
    await expect(
      engine.requestExtension(alice, { requestId: parent.id, durationMinutes: 60, justification: "need more time for CHG-1" }),
    ).rejects.toMatchObject({ code: "conflict" });
  });
});
