import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, createLocalJWKSet } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal, bob: Principal, carol: Principal, dave: Principal, erin: Principal;

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  carol = await fx.user("carol@example.com", ["audit"]);
  dave = await fx.user("dave@example.com", ["platform-admins"]);
  erin = await fx.user("erin@example.com", ["engineering"]);
});
afterAll(() => fx?.close());

async function events(requestId: string) {
  return fx.db.auditEvent.findMany({ where: { requestId }, orderBy: { id: "asc" } });
}

async function jwks() {
  const { publicJwks } = await import("@/lib/credentials/keys");
  return createLocalJWKSet(await publicJwks());
}

describe("creating a request", () => {
  it("records a pending request with the policy's approval requirement and an audit event", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    expect(request).toMatchObject({
      status: "pending",
      requesterId: alice.id,
      durationSeconds: 3600,
      stages: [{ name: "Approval", groups: ["engineering-leads", "quorum"], required: 1, oneFromEachGroup: false }],
      currentStage: 0,
      currentStageGroups: ["engineering-leads", "quorum"],
    });
    expect(request.pendingExpiresAt!.getTime() - request.createdAt.getTime()).toBeGreaterThan(24 * 3600_000 - 5000);
    const [created] = await events(request.id);
    expect(created).toMatchObject({ action: "request.created", actorEmail: "alice@example.com", fromStatus: null, toStatus: "pending" });
  });

  it("refuses bad input with a message beside each field, and writes nothing", async () => {
    const before = await fx.db.accessRequest.count();
    await expect(
      engine.createRequest(alice, "temporary-access", validInput({ justification: "", role: "root", durationMinutes: "abc" })),
    ).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: {
        justification: "Say why you need this access (at least 10 characters).",
        role: "Choose read or write.",
        durationMinutes: "Enter a duration in minutes.",
      },
    });
    await expect(engine.createRequest(alice, "temporary-access", validInput({ durationMinutes: 9 * 60 }))).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { durationMinutes: "Duration must be between 15m and 8h for payments-api (staging)." },
    });
    expect(await fx.db.accessRequest.count()).toBe(before);
  });

  it("refuses hidden or tampered fields", async () => {
    await expect(engine.createRequest(alice, "temporary-access", validInput({ requesterId: bob.id }))).rejects.toMatchObject({ code: "invalid" });
    await expect(engine.createRequest(alice, "temporary-access", validInput({ targetId: "two-person", role: "write" }))).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { role: "Role must be one of: read." },
    });
  });

  it("refuses people the policy does not allow", async () => {
    await expect(engine.createRequest(carol, "temporary-access", validInput())).rejects.toMatchObject({ code: "forbidden" });
    await expect(engine.createRequest(bob, "temporary-access", validInput({ targetId: "payments-api-production" }))).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { targetId: expect.stringContaining("Only members of engineering") },
    });
    await expect(engine.createRequest(alice, "no-such-workflow", validInput())).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("approving", () => {
  it("issues a signed credential whose lifetime starts at approval, all audited", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput({ durationMinutes: 30, role: "write" }));
    await new Promise((r) => setTimeout(r, 1100));
    const approvedAt = Date.now();
    const done = await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok for INC-1234" });
    expect(done.status).toBe("active");
    expect(done.activatedAt!.getTime()).toBeGreaterThanOrEqual(approvedAt - 1000);
    expect(done.expiresAt!.getTime() - done.activatedAt!.getTime()).toBe(30 * 60 * 1000);
    expect(done.activatedAt!.getTime()).toBeGreaterThan(request.createdAt.getTime() + 1000);

    expect((await events(request.id)).map((e) => [e.action, e.fromStatus, e.toStatus])).toEqual([
      ["request.created", null, "pending"],
      ["request.approved", "pending", "approved"],
      ["request.executing", "approved", "executing"],
      ["credential.issued", null, null],
      ["grant.activated", "executing", "active"],
    ]);

    const { token, expiresAt } = await engine.revealCredential(alice, request.id);
    const header = decodeProtectedHeader(token);
    expect(header).toMatchObject({ alg: "RS256", typ: "JWT" });
    const { payload } = await jwtVerify(token, await jwks(), { issuer: "http://localhost:3999", audience: "payments-api-staging", algorithms: ["RS256"] });
    const credential = await fx.db.credential.findUniqueOrThrow({ where: { requestId: request.id } });
    expect(payload).toMatchObject({ sub: "alice@example.com", target: "payments-api-staging", role: "write", jti: credential.id, request_id: request.id });
    expect(header.kid).toBe(credential.kid);
    expect(payload.exp).toBe(Math.floor(done.expiresAt!.getTime() / 1000));
    expect(expiresAt.getTime()).toBe(done.expiresAt!.getTime());
    // The audit trail never holds the token.
    expect(JSON.stringify((await events(request.id)).map((e) => ({ ...e, id: String(e.id), seq: String(e.seq) })))).not.toContain(token.split(".")[2]);
  });

  it("shows the credential once, only to its owner", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    await expect(engine.revealCredential(bob, request.id)).rejects.toMatchObject({ code: "forbidden" });
    const results = await Promise.allSettled([engine.revealCredential(alice, request.id), engine.revealCredential(alice, request.id)]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    await expect(engine.revealCredential(alice, request.id)).rejects.toMatchObject({
      code: "conflict",
      message: expect.stringContaining("already shown once"),
    });
    const credential = await fx.db.credential.findUniqueOrThrow({ where: { requestId: request.id } });
    expect(credential.sealedToken).toBeNull();
    expect(credential.revealedAt).not.toBeNull();
  });

  it("refuses the requester, an auditor and an approver outside the groups, with clear messages", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "payments-api-production" }));
    const lead = await fx.user("lead-self@example.com", ["engineering-leads", "engineering"]);
    await expect(engine.decide(alice, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: "You cannot approve your own request.",
    });
    await expect(engine.decide(carol, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: "Your role does not allow approving requests.",
    });
    await expect(engine.decide(dave, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: 'Only members of engineering-leads may approve the stage "Approval".',
    });
    const own = await engine.createRequest(lead, "temporary-access", validInput({ targetId: "payments-api-production" }));
    await expect(engine.decide(lead, { requestId: own.id, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: "You cannot approve your own request.",
    });
    expect(await fx.db.approval.count({ where: { requestId: { in: [request.id, own.id] } } })).toBe(0);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");
  });

  it("rejection needs a comment and ends the request", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    await expect(engine.decide(bob, { requestId: request.id, decision: "reject", comment: "  " })).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { comment: "Say why you reject this request." },
    });
    const rejected = await engine.decide(bob, { requestId: request.id, decision: "reject", comment: "use staging read instead" });
    expect(rejected.status).toBe("rejected");
    const otherLead = await fx.user("lead-2@example.com", ["engineering-leads"]);
    await expect(engine.decide(otherLead, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({ code: "conflict" });
    const last = (await events(request.id)).at(-1)!;
    expect(last).toMatchObject({
      action: "request.rejected",
      actorEmail: "bob@example.com",
      fromStatus: "pending",
      toStatus: "rejected",
      data: { comment: "use staging read instead" },
    });
    expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(0);
  });

  it("with two approvals needed, waits for two different people, each approving once", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "two-person" }));
    const first = await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "one" });
    expect(first.status).toBe("pending");
    await expect(engine.decide(bob, { requestId: request.id, decision: "approve", comment: "again" })).rejects.toMatchObject({
      code: "conflict",
      message: "You have already decided on this request.",
    });
    const second = await engine.decide(dave, { requestId: request.id, decision: "approve", comment: "two" });
    expect(second.status).toBe("active");
  });

  it("20 approvers at the same instant produce exactly one credential", async () => {
    const approvers = await Promise.all(Array.from({ length: 20 }, (_, i) => fx.user(`approver-${i}@example.com`, ["quorum"])));
    const request = await engine.createRequest(erin, "temporary-access", validInput());
    const results = await Promise.allSettled(approvers.map((who) => engine.decide(who, { requestId: request.id, decision: "approve", comment: "race" })));
    const fulfilled = results.filter((r) => r.status === "fulfilled");
    expect(fulfilled).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject({ code: "conflict" });
    expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(1);
    expect(await fx.db.approval.count({ where: { requestId: request.id } })).toBe(1);
    expect(await fx.db.auditEvent.count({ where: { requestId: request.id, action: "credential.issued" } })).toBe(1);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("active");
  });

  it("a step that fails leaves no half-written state", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const issue = await import("@/lib/credentials/issue");
    const spy = vi.spyOn(issue, "issueCredential").mockRejectedValueOnce(new Error("signer unavailable"));
    try {
      await expect(engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" })).rejects.toThrow("signer unavailable");
    } finally {
      spy.mockRestore();
    }
    const after = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
    expect(after).toMatchObject({ status: "pending", activatedAt: null, expiresAt: null, decidedAt: null });
    expect(await fx.db.approval.count({ where: { requestId: request.id } })).toBe(0);
    expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(0);
    expect((await events(request.id)).map((e) => e.action)).toEqual(["request.created"]);
    // And the same approval then succeeds.
    expect((await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" })).status).toBe("active");
  });
});

describe("ending grants", () => {
  it("the requester revokes early; the credential is marked revoked; revoking again is a no-op", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    await expect(engine.revokeGrant(erin, { requestId: request.id, reason: "" })).rejects.toMatchObject({ code: "forbidden" });
    const revoked = await engine.revokeGrant(alice, { requestId: request.id, reason: "done early" });
    expect(revoked.status).toBe("revoked");
    expect((await engine.revokeGrant(alice, { requestId: request.id, reason: "" })).status).toBe("revoked");
    const credential = await fx.db.credential.findUniqueOrThrow({ where: { requestId: request.id } });
    expect(credential.revokedAt).not.toBeNull();
    expect(credential.sealedToken).toBeNull();
    expect(await fx.db.auditEvent.count({ where: { requestId: request.id, action: "grant.revoked" } })).toBe(1);
    await expect(engine.revealCredential(alice, request.id)).rejects.toMatchObject({ code: "conflict" });
  });

  it("an admin may revoke anyone's grant", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    const revoked = await engine.revokeGrant(dave, { requestId: request.id, reason: "incident over" });
    expect(revoked.status).toBe("revoked");
    expect((await events(request.id)).at(-1)).toMatchObject({ action: "grant.revoked", actorEmail: "dave@example.com", data: { reason: "incident over" } });
  });

  it("the requester may cancel a pending request, nobody else", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    await expect(engine.cancelRequest(bob, request.id)).rejects.toMatchObject({ code: "forbidden" });
    expect((await engine.cancelRequest(alice, request.id)).status).toBe("cancelled");
    await expect(engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({ code: "conflict" });
  });

  it("expiry is idempotent and refuses grants not yet due", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const active = await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(await engine.expireGrant(request.id)).toBe("not-due");
    const later = new Date(active.expiresAt!.getTime() + 1000);
    expect(await engine.expireGrant(request.id, later)).toBe("expired");
    expect(await engine.expireGrant(request.id, later)).toBe("not-active");
    expect(await fx.db.auditEvent.count({ where: { requestId: request.id, action: "grant.expired" } })).toBe(1);
  });
});

describe("jobs that follow a change", () => {
  const jobsOf = (requestId: string) =>
    fx.db.$queryRaw<
      { name: string; start_after: Date }[]
    >`SELECT name, start_after FROM pgboss.job WHERE singleton_key = ${requestId} AND state = 'created' ORDER BY name`;

  it("are queued in the change's own transaction: a pending timeout, then the expiry and its notice", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    expect(await jobsOf(request.id)).toEqual([{ name: "request-expire-pending", start_after: request.pendingExpiresAt }]);
    const active = await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    const { policy } = await import("@/lib/policy/current");
    const notice = policy().defaults.expiringNotice * 1000;
    expect(await jobsOf(request.id)).toEqual([
      { name: "grant-expire", start_after: active.expiresAt },
      { name: "notify-expiring", start_after: new Date(active.expiresAt!.getTime() - notice) },
      { name: "request-expire-pending", start_after: request.pendingExpiresAt },
    ]);
  });

  it("roll back with a transaction that fails, and commit with one that does not", async () => {
    const { queueInTransaction, QUEUES } = await import("@/lib/jobs/queue");
    const { db } = await import("@/lib/db");
    const id = `job-test-${Date.now()}`;
    const job = { queue: QUEUES.undo, requestId: id, at: new Date() };
    await expect(
      db.$transaction(async (tx) => {
        await queueInTransaction(tx, [job]);
        throw new Error("the change failed after its jobs were queued");
      }),
    ).rejects.toThrow("the change failed");
    expect(await jobsOf(id)).toEqual([]);
    await db.$transaction((tx) => queueInTransaction(tx, [job, { ...job, queue: QUEUES.notifyFlush }]));
    expect((await jobsOf(id)).map((j) => j.name)).toEqual(["notify-flush", "request-undo"]);
  });
});

describe("JWKS", () => {
  it("publishes only public keys", async () => {
    const { publicJwks } = await import("@/lib/credentials/keys");
    const { keys } = await publicJwks();
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig" });
      expect(key).not.toHaveProperty("d");
      expect(key).not.toHaveProperty("p");
    }
    void createRemoteJWKSet;
  });
});
