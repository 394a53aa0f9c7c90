import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

/** Access follows the directory: a person who leaves a group or the company loses what came with it, at once, audited per grant. */
let fx: Awaited<ReturnType<typeof engineFixture>>;

beforeAll(async () => {
  fx = await engineFixture();
});
afterAll(() => fx?.close());

async function activeGrant(who: Principal, approver: Principal, input: Record<string, unknown>) {
  const engine = await import("@/lib/approvals/engine");
  const request = await engine.createRequest(who, "temporary-access", validInput(input));
  const decided = request.status === "pending" ? await engine.decide(approver, { requestId: request.id, decision: "approve", comment: "ok" }) : request;
  expect(decided.status).toBe("active");
  const { token } = await engine.revealCredential(who, request.id);
  return { id: request.id, token };
}

describe("applyDirectoryChange", () => {
  it("a person removed from a group loses each grant and pending request that group gave, in one audited step each, and keeps the rest", async () => {
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    const { verifyCredential } = await import("@/lib/authz/verify");
    const engine = await import("@/lib/approvals/engine");
    const carol = await fx.user("carol.dir@example.com", ["engineering", "oncall"]);
    const bob = await fx.user("bob.dir@example.com", ["engineering-leads"]);
    const production = await activeGrant(carol, bob, { targetId: "payments-api-production" });
    // Auto-approved for oncall, which carol keeps.
    const sandbox = await activeGrant(carol, bob, { targetId: "sandbox", role: "write" });
    const pendingStaging = await engine.createRequest(carol, "temporary-access", validInput({ targetId: "payments-api-staging" }));
    const pendingStaged = await engine.createRequest(carol, "temporary-access", validInput({ targetId: "staged" }));

    const outcome = await applyDirectoryChange({ userId: carol.id, groups: ["oncall"], source: "scim" });
    expect(outcome).toEqual({ revokedGrants: 1, cancelledRequests: 1, endedSessions: 0, revokedTokens: 0 });

    expect(await verifyCredential(production.token)).toMatchObject({ ok: false });
    expect(await verifyCredential(sandbox.token)).toMatchObject({ ok: true });
    const statuses = Object.fromEntries((await fx.db.accessRequest.findMany({ where: { requesterId: carol.id } })).map((r) => [r.id, r.status]));
    expect(statuses).toEqual({ [production.id]: "revoked", [sandbox.id]: "active", [pendingStaging.id]: "cancelled", [pendingStaged.id]: "pending" });

    const user = await fx.db.user.findUniqueOrThrow({ where: { id: carol.id } });
    expect(user).toMatchObject({ groups: ["oncall"], roles: ["requester"], active: true });
    const changed = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "user.directory_changed", data: { path: ["userId"], equals: carol.id } } });
    expect(changed.data).toMatchObject({ source: "scim", removed: ["engineering"], added: [], reason: "directory: removed from engineering" });
    const revoked = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: production.id, action: "grant.revoked" } });
    expect(revoked).toMatchObject({ fromStatus: "active", toStatus: "revoked", data: { reason: "directory: removed from engineering" } });
    const cancelled = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: pendingStaging.id, action: "request.cancelled" } });
    expect(cancelled.data).toMatchObject({ reason: "directory: removed from engineering" });

    // The second time changes nothing and records nothing new.
    const events = await fx.db.auditEvent.count();
    expect(await applyDirectoryChange({ userId: carol.id, groups: ["oncall"], source: "scim" })).toEqual({
      revokedGrants: 0,
      cancelledRequests: 0,
      endedSessions: 0,
      revokedTokens: 0,
    });
    expect(await fx.db.auditEvent.count()).toBe(events);
  });

  it("an approver demoted by the directory loses the approver role and the tokens that approve, at once", async () => {
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    const tokens = await import("@/lib/identity/tokens");
    const engine = await import("@/lib/approvals/engine");
    const erin = await fx.user("erin.dir@example.com", ["engineering-leads"]);
    const alice = await fx.user("alice.dir@example.com", ["engineering"]);
    const approving = await tokens.createPersonalToken(erin, { name: "approvals bot", scopes: ["approvals:write", "requests:read"], expiresInDays: 30 });
    const reading = await tokens.createPersonalToken(erin, { name: "reader", scopes: ["requests:read"], expiresInDays: 30 });
    const before = await tokens.authenticateToken(reading.secret);
    expect(before).toMatchObject({ ok: true, who: { roles: ["requester", "approver"] } });

    expect(await applyDirectoryChange({ userId: erin.id, groups: ["engineering"], source: "sign-in" })).toMatchObject({ revokedTokens: 1 });
    expect(await tokens.authenticateToken(approving.secret)).toEqual({ ok: false, reason: "This API token was revoked." });
    const after = await tokens.authenticateToken(reading.secret);
    expect(after).toMatchObject({ ok: true, who: { roles: ["requester"] } });
    // And the engine refuses the demoted approver, whatever way they come in.
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    if (!after.ok) throw new Error("unreachable");
    await expect(engine.decide(after.who, { requestId: request.id, decision: "approve", comment: "ok" })).rejects.toMatchObject({ code: "forbidden" });
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "token.revoked", data: { path: ["tokenId"], equals: approving.token.id } } });
    expect(event.data).toMatchObject({ reason: "directory: removed from engineering-leads (at sign-in)" });
  });

  it("deactivation ends sessions, tokens, every grant and every pending request, and refuses the person's tokens from then on", async () => {
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    const { verifyCredential } = await import("@/lib/authz/verify");
    const tokens = await import("@/lib/identity/tokens");
    const engine = await import("@/lib/approvals/engine");
    const frank = await fx.user("frank.dir@example.com", ["engineering", "oncall"]);
    const bob = await fx.user("bob2.dir@example.com", ["engineering-leads"]);
    const grant = await activeGrant(frank, bob, { targetId: "sandbox", role: "read" });
    const pending = await engine.createRequest(frank, "temporary-access", validInput({ targetId: "staged" }));
    const { secret } = await tokens.createPersonalToken(frank, { name: "laptop", scopes: ["requests:read"], expiresInDays: 30 });
    await fx.db.session.create({ data: { sessionToken: "frank-session", userId: frank.id, expires: new Date(Date.now() + 3600_000) } });

    const outcome = await applyDirectoryChange({ userId: frank.id, active: false, source: "scim" });
    expect(outcome).toEqual({ revokedGrants: 1, cancelledRequests: 1, endedSessions: 1, revokedTokens: 1 });
    expect(await verifyCredential(grant.token)).toMatchObject({ ok: false });
    expect(await tokens.authenticateToken(secret)).toMatchObject({ ok: false });
    expect(await fx.db.session.count({ where: { userId: frank.id } })).toBe(0);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: pending.id } })).status).toBe("cancelled");
    expect(await fx.db.user.findUniqueOrThrow({ where: { id: frank.id } })).toMatchObject({ active: false, deactivatedAt: expect.any(Date) });
    const revoked = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: grant.id, action: "grant.revoked" } });
    expect(revoked.data).toMatchObject({ reason: "directory: deactivated" });

    // A token that escaped revocation (made behind the application's back) is still refused.
    const { createHash, randomBytes } = await import("node:crypto");
    const stray = `lkp_${randomBytes(32).toString("base64url")}`;
    await fx.db.apiToken.create({
      data: {
        kind: "personal",
        name: "stray",
        prefix: stray.slice(0, 12),
        tokenHash: createHash("sha256").update(stray).digest("hex"),
        userId: frank.id,
        scopes: ["requests:read"],
        expiresAt: new Date(Date.now() + 86_400_000),
        createdById: frank.id,
      },
    });
    expect(await tokens.authenticateToken(stray)).toEqual({ ok: false, reason: "The identity this API token speaks for was deactivated." });

    // Reactivation restores the person, not what was ended.
    await applyDirectoryChange({ userId: frank.id, active: true, source: "scim" });
    expect(await fx.db.user.findUniqueOrThrow({ where: { id: frank.id } })).toMatchObject({ active: true, deactivatedAt: null });
    expect(await verifyCredential(grant.token)).toMatchObject({ ok: false });
  });

  it("an admin's offboarding ends everything the person holds, naming the admin and the reason", async () => {
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    const { actorOf } = await import("@/lib/approvals/engine");
    const dave = await fx.user("dave.dir@example.com", ["platform-admins"]);
    const gina = await fx.user("gina.dir@example.com", ["engineering", "oncall"]);
    const bob = await fx.user("bob3.dir@example.com", ["engineering-leads"]);
    const grant = await activeGrant(gina, bob, { targetId: "sandbox", role: "read" });
    const outcome = await applyDirectoryChange({
      userId: gina.id,
      active: false,
      endAll: true,
      source: "admin",
      actor: actorOf(dave),
      reason: "left the company",
    });
    expect(outcome.revokedGrants).toBe(1);
    const revoked = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: grant.id, action: "grant.revoked" } });
    expect(revoked).toMatchObject({ actorEmail: "dave.dir@example.com", data: { reason: "offboarding: deactivated (left the company)" } });
    await expect(applyDirectoryChange({ userId: "no-such-user", active: false, source: "admin" })).rejects.toMatchObject({ code: "not_found" });
  });

  it("Admin → Users offboarding says what it will end, then ends exactly that; it refuses non-admins, oneself, a missing reason and service identities", async () => {
    const { offboard, offboardingPreview, reactivate } = await import("@/lib/identity/offboarding");
    const tokens = await import("@/lib/identity/tokens");
    const engine = await import("@/lib/approvals/engine");
    const dave = await fx.user("dave2.dir@example.com", ["platform-admins"]);
    const bob = await fx.user("bob4.dir@example.com", ["engineering-leads"]);
    const hank = await fx.user("hank.dir@example.com", ["engineering", "oncall"]);
    const grant = await activeGrant(hank, bob, { targetId: "sandbox", role: "read" });
    const pending = await engine.createRequest(hank, "temporary-access", validInput({ targetId: "staged" }));
    await tokens.createPersonalToken(hank, { name: "laptop", scopes: ["requests:read"], expiresInDays: 30 });
    await fx.db.session.create({ data: { sessionToken: "hank-session", userId: hank.id, expires: new Date(Date.now() + 3600_000) } });

    const preview = await offboardingPreview(hank.id);
    expect(preview).toMatchObject({
      sessions: 1,
      tokens: [{ name: "laptop" }],
      grants: [{ id: grant.id, targetTitle: "sandbox" }],
      pending: [{ id: pending.id, targetTitle: "staged target" }],
    });

    await expect(offboard(bob, { userId: hank.id, reason: "left" })).rejects.toMatchObject({ code: "forbidden" });
    await expect(offboard(dave, { userId: dave.id, reason: "leaving" })).rejects.toMatchObject({ code: "forbidden" });
    await expect(offboard(dave, { userId: hank.id, reason: " " })).rejects.toMatchObject({ code: "invalid" });
    const service = await fx.db.user.create({ data: { email: "ci.dir@example.com", kind: "service", groups: ["engineering"], roles: ["requester"] } });
    await expect(offboard(dave, { userId: service.id, reason: "gone" })).rejects.toMatchObject({ code: "conflict" });
    expect(await offboardingPreview(service.id)).toBeNull();
    // Nothing was ended by the refusals.
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: grant.id } })).status).toBe("active");

    expect(await offboard(dave, { userId: hank.id, reason: "left the company" })).toEqual({
      revokedGrants: 1,
      cancelledRequests: 1,
      endedSessions: 1,
      revokedTokens: 1,
    });
    expect(await offboardingPreview(hank.id)).toMatchObject({ user: { active: false }, sessions: 0, tokens: [], grants: [], pending: [] });
    const revoked = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: grant.id, action: "grant.revoked" } });
    expect(revoked).toMatchObject({ actorEmail: "dave2.dir@example.com", data: { reason: "offboarding: deactivated (left the company)" } });

    // The person's page shows the change beside the grant it ended.
    const { personActivity } = await import("@/lib/history/person");
    const activity = await personActivity("hank.dir@example.com");
    expect(activity!.directoryChanges).toEqual([
      expect.objectContaining({ source: "admin", by: "dave2.dir@example.com", deactivated: true, reason: "offboarding: deactivated (left the company)" }),
    ]);
    expect(activity!.held).toEqual([expect.objectContaining({ id: grant.id, status: "revoked", endedBecause: "offboarding: deactivated (left the company)" })]);

    await reactivate(dave, hank.id);
    await expect(reactivate(dave, hank.id)).rejects.toMatchObject({ code: "conflict" });
    expect(await fx.db.user.findUniqueOrThrow({ where: { id: hank.id } })).toMatchObject({ active: true });
    expect((await personActivity("hank.dir@example.com"))!.directoryChanges[0]).toMatchObject({ reactivated: true });
  });
});

describe("an approval that would activate a grant for someone the directory has since changed", () => {
  // The directory's first step (the person's row) commits before its per-request steps; an approval landing in between must not activate.
  it("of a deactivated person: refused with the reason, the request cancelled and audited, nothing issued", async () => {
    const engine = await import("@/lib/approvals/engine");
    const erin = await fx.user("erin.wait@example.com", ["engineering"]);
    const bob = await fx.user("bob.wait@example.com", ["engineering-leads"]);
    const request = await engine.createRequest(erin, "temporary-access", validInput({ targetId: "payments-api-production" }));
    await fx.db.user.update({ where: { id: erin.id }, data: { active: false, deactivatedAt: new Date() } });

    await expect(engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" })).rejects.toMatchObject({
      code: "conflict",
      message: "The requester may no longer have this (directory: the person was deactivated), so the request was cancelled instead of approved.",
    });
    const after = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id }, include: { decisions: true } });
    expect(after).toMatchObject({ status: "cancelled", activatedAt: null });
    expect(after.decisions).toEqual([]);
    expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(0);
    const cancelled = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, action: "request.cancelled" } });
    expect(cancelled).toMatchObject({
      actorType: "system",
      fromStatus: "pending",
      toStatus: "cancelled",
      data: { reason: "directory: the person was deactivated", approver: bob.email },
    });
    await expect(engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" })).rejects.toMatchObject({
      code: "conflict",
      message: expect.stringMatching(/already cancelled/),
    });
  });

  it("of a person no longer in the group the policy requires: cancelled with the policy's reason; one still entitled is approved as before", async () => {
    const engine = await import("@/lib/approvals/engine");
    const frank = await fx.user("frank.wait@example.com", ["engineering"]);
    const gina = await fx.user("gina.wait@example.com", ["engineering"]);
    const bob = await fx.user("bob.wait2@example.com", ["engineering-leads"]);
    const demoted = await engine.createRequest(frank, "temporary-access", validInput({ targetId: "payments-api-production" }));
    const kept = await engine.createRequest(gina, "temporary-access", validInput({ targetId: "payments-api-production" }));
    await fx.db.user.update({ where: { id: frank.id }, data: { groups: ["oncall"], roles: ["requester"] } });

    const refusal = await engine.decide(bob, { requestId: demoted.id, decision: "approve", comment: "ok" }).catch((e: Error & { code?: string }) => e);
    expect(refusal).toMatchObject({
      code: "conflict",
      message: expect.stringMatching(/^The requester may no longer have this \(directory: .+\), so the request was cancelled instead of approved\.$/),
    });
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: demoted.id } })).status).toBe("cancelled");
    expect((await engine.decide(bob, { requestId: kept.id, decision: "approve", comment: "ok" })).status).toBe("active");
    // A rejection is still recorded as one: nothing is granted by it.
    const other = await engine.createRequest(gina, "temporary-access", validInput({ targetId: "payments-api-production" }));
    await fx.db.user.update({ where: { id: gina.id }, data: { active: false } });
    expect((await engine.decide(bob, { requestId: other.id, decision: "reject", comment: "no" })).status).toBe("rejected");
  });

  it("racing the directory change itself, an approval never leaves an active grant behind", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    const bob = await fx.user("bob.race@example.com", ["engineering-leads"]);
    for (let i = 0; i < 12; i++) {
      const holder = await fx.user(`race-${i}@example.com`, ["engineering"]);
      const request = await engine.createRequest(holder, "temporary-access", validInput({ targetId: "payments-api-production" }));
      const change = () => applyDirectoryChange({ userId: holder.id, groups: i % 2 ? ["oncall"] : [], active: i % 2 === 1, source: "scim" });
      const approve = () => engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
      // Either may start first; both run at once.
      const started = i % 2 ? [change(), approve()] : [approve(), change()];
      await Promise.allSettled(started);
      const after = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
      expect(["revoked", "cancelled"]).toContain(after.status);
      // A grant that did activate first was revoked by the change, its credential with it.
      for (const credential of await fx.db.credential.findMany({ where: { requestId: request.id } })) expect(credential.revokedAt).not.toBeNull();
    }
  });
});
