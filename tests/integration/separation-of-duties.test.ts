import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * An admin and his sockpuppet: the service identities an admin makes are his, so neither
 * he nor they approve what the other asked for, decide twice between them, or review each
 * other's break-glass; and an identity that can approve exists only once another admin
 * agreed. Through the engine (what the portal's server actions call) and through the API.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let engine: typeof import("@/lib/approvals/engine");
let services: typeof import("@/lib/identity/service-identities");
let changes: typeof import("@/lib/identity/service-changes");
let tokens: typeof import("@/lib/identity/tokens");
let dave: Principal;
let erin: Principal;
let alice: Principal;
let lee: Principal;
let frank: Principal;
/** dave's sockpuppet (can approve and request), its principal as its token presents it, and tokens. */
let puppet: Principal;
const t: Record<string, string> = {};

async function principalOf(secret: string): Promise<Principal> {
  const who = await tokens.authenticateToken(secret);
  if (!who.ok) throw new Error(who.reason);
  return who.who;
}

async function call(token: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${api.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** An identity that can approve, made the only way there is: one admin asks, another approves. */
async function approvedIdentity(asker: Principal, approver: Principal, input: { name: string; groups: string[]; owners?: string[] }) {
  const proposed = await services.createServiceIdentity(asker, { description: `${input.name} for tests`, requestOnly: false, owners: [], ...input });
  expect(proposed.outcome).toBe("proposed");
  const decided = await changes.decideServiceChange(approver, { changeId: proposed.change!.id, decision: "approve", comment: "agreed" });
  return decided.serviceId!;
}

const SAME_PARTY = /a service identity and its owners count as one party/;

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  services = await import("@/lib/identity/service-identities");
  changes = await import("@/lib/identity/service-changes");
  tokens = await import("@/lib/identity/tokens");
  dave = await fx.user("dave@example.com", ["platform-admins", "engineering", "oncall"]);
  erin = await fx.user("erin@example.com", ["platform-admins"]);
  alice = await fx.user("alice@example.com", ["engineering"]);
  lee = await fx.user("lee@example.com", ["engineering-leads"]);
  frank = await fx.user("frank@example.com", ["engineering-leads", "engineering"]);
  const puppetId = await approvedIdentity(dave, erin, { name: "dave-bot", groups: ["engineering", "engineering-leads", "oncall"] });
  t.puppet = (
    await tokens.createServiceToken(dave, puppetId, {
      name: "ci",
      scopes: ["requests:read", "requests:write", "credentials:read", "approvals:write"],
      expiresInDays: 30,
    })
  ).secret;
  t.dave = (
    await tokens.createPersonalToken(dave, { name: "laptop", scopes: ["requests:read", "requests:write", "approvals:write"], expiresInDays: 30 })
  ).secret;
  puppet = await principalOf(t.puppet);
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

describe("an admin and the service identity he made are one party", () => {
  it("the admin requests; his identity's token cannot approve it, by the API or the engine, nor sees it in its inbox", async () => {
    const request = await engine.createRequest(dave, "temporary-access", validInput({ targetId: "payments-api-staging", role: "write" }));
    expect((await call(t.puppet!, "GET", "/approvals")).body.requests.map((r: { id: string }) => r.id)).not.toContain(request.id);
    const refused = await call(t.puppet!, "POST", `/requests/${request.id}/approve`, { comment: "lgtm" });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(SAME_PARTY);
    await expect(engine.decide(puppet, { requestId: request.id, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(SAME_PARTY),
    });
    expect(await fx.db.approval.count({ where: { requestId: request.id } })).toBe(0);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");
    // Another party still can, and does.
    expect((await engine.decide(lee, { requestId: request.id, decision: "approve", comment: "ok" })).status).toBe("active");
  });

  it("the identity requests; its owner cannot approve it, in the portal (engine) or with his own token", async () => {
    const made = await call(t.puppet!, "POST", "/requests", {
      workflowId: "temporary-access",
      input: validInput({ targetId: "payments-api-production", role: "write" }),
    });
    expect(made.status).toBe(201);
    const id = made.body.id as string;
    await expect(engine.decide(dave, { requestId: id, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(SAME_PARTY),
    });
    const byToken = await call(t.dave!, "POST", `/requests/${id}/approve`, { comment: "mine" });
    expect(byToken.status).toBe(403);
    expect(byToken.body.detail).toMatch(SAME_PARTY);
    // Rejecting is deciding too: the party may not.
    expect((await call(t.dave!, "POST", `/requests/${id}/reject`, { comment: "no" })).status).toBe(403);
    const view = await engine.decide(lee, { requestId: id, decision: "approve", comment: "ok" });
    expect(view.status).toBe("active");
    // So the credential the identity collects was approved by another party.
    expect((await call(t.puppet!, "POST", `/requests/${id}/credential`)).status).toBe(200);
  });

  it("two identities of one owner are one party", async () => {
    const otherId = await approvedIdentity(dave, erin, { name: "dave-bot-two", groups: ["engineering-leads"] });
    const other = (await tokens.createServiceToken(dave, otherId, { name: "ci", scopes: ["requests:read", "approvals:write"], expiresInDays: 30 })).secret;
    const made = await call(t.puppet!, "POST", "/requests", {
      workflowId: "temporary-access",
      input: validInput({ targetId: "payments-api-staging", role: "write" }),
    });
    const refused = await call(other, "POST", `/requests/${made.body.id}/approve`, { comment: "sibling" });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(SAME_PARTY);
  });

  it("a named owner is in the party; the owners of one identity are still separate people", async () => {
    const shared = await services.createServiceIdentity(dave, {
      name: "shared-bot",
      description: "reports",
      groups: ["engineering"],
      requestOnly: false,
      owners: ["frank@example.com"],
    });
    expect(shared.outcome).toBe("done");
    expect((await fx.db.serviceOwner.findMany({ where: { serviceId: shared.service!.id } })).map((o) => o.ownerId).sort()).toEqual([dave.id, frank.id].sort());
    const sharedToken = (await tokens.createServiceToken(dave, shared.service!.id, { name: "ci", scopes: ["requests:write"], expiresInDays: 30 })).secret;
    const made = await call(sharedToken, "POST", "/requests", {
      workflowId: "temporary-access",
      input: validInput({ targetId: "payments-api-production", role: "read" }),
    });
    await expect(engine.decide(frank, { requestId: made.body.id, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(SAME_PARTY),
    });
    // frank and dave co-own an identity, but each is a person of his own: frank may approve dave's request.
    const daves = await engine.createRequest(dave, "temporary-access", validInput({ targetId: "payments-api-staging", role: "write" }));
    expect((await engine.decide(frank, { requestId: daves.id, decision: "approve", comment: "ok" })).status).toBe("active");
    await expect(
      services.createServiceIdentity(dave, { name: "ghost-bot", description: "x", groups: ["engineering"], requestOnly: true, owners: ["nobody@example.com"] }),
    ).rejects.toMatchObject({ code: "invalid", fieldErrors: { owners: expect.stringMatching(/nobody@example.com/) } });
    await expect(
      services.createServiceIdentity(dave, {
        name: "ghost-bot",
        description: "x",
        groups: ["engineering"],
        requestOnly: true,
        owners: ["dave-bot@service.latchkey"],
      }),
    ).rejects.toMatchObject({ code: "invalid" });
  });

  it("one decision per party: the identity's approval and its owner's count once, so a two-person stage needs another", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "two-person", role: "read", durationMinutes: 30 }));
    const first = await call(t.puppet!, "POST", `/requests/${request.id}/approve`, { comment: "one" });
    expect(first.body.status).toBe("pending");
    const second = engine.decide(dave, { requestId: request.id, decision: "approve", comment: "two" });
    await expect(second).rejects.toMatchObject({ code: "forbidden", message: expect.stringMatching(/decide once between them/) });
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");
    expect((await engine.decide(erin, { requestId: request.id, decision: "approve", comment: "two" })).status).toBe("active");
  });

  it("break-glass: neither reviews the other's emergency grant", async () => {
    const byPuppet = await engine.breakGlass(
      puppet,
      "temporary-access",
      validInput({ targetId: "staged", role: "read", durationMinutes: 15 }),
      "pager fired for billing outage",
    );
    await expect(engine.reviewBreakGlass(dave, { requestId: byPuppet.id, comment: "fine" })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(SAME_PARTY),
    });
    const byDave = await engine.breakGlass(
      dave,
      "temporary-access",
      validInput({ targetId: "staged", role: "read", durationMinutes: 15 }),
      "pager fired for billing outage",
    );
    await expect(engine.reviewBreakGlass(puppet, { requestId: byDave.id, comment: "fine" })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(SAME_PARTY),
    });
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: byDave.id } })).reviewedAt).toBeNull();
    expect((await engine.reviewBreakGlass(lee, { requestId: byDave.id, comment: "checked the incident" })).reviewedById).toBe(lee.id);
  });

  it("an owner added later joins the party at once", async () => {
    const franksRequest = await engine.createRequest(frank, "temporary-access", validInput({ targetId: "payments-api-staging", role: "write" }));
    const puppetRow = await fx.db.user.findUniqueOrThrow({ where: { email: "dave-bot@service.latchkey" } });
    await fx.db.serviceOwner.create({ data: { serviceId: puppetRow.id, ownerId: frank.id, addedById: dave.id } });
    const refused = await call(t.puppet!, "POST", `/requests/${franksRequest.id}/approve`, { comment: "x" });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(SAME_PARTY);
    await fx.db.serviceOwner.delete({ where: { serviceId_ownerId: { serviceId: puppetRow.id, ownerId: frank.id } } });
  });
});

describe("an identity that can approve needs a second admin", () => {
  it("creating one only proposes it; the admin who asked cannot approve it, nor can a named owner, a token or a non-admin", async () => {
    const proposed = await services.createServiceIdentity(dave, {
      name: "approver-bot",
      description: "approves deploys",
      groups: ["engineering-leads"],
      requestOnly: false,
      owners: ["erin@example.com"],
    });
    expect(proposed.outcome).toBe("proposed");
    expect(await fx.db.user.findUnique({ where: { email: "approver-bot@service.latchkey" } })).toBeNull();
    const changeId = proposed.change!.id;
    await expect(changes.decideServiceChange(dave, { changeId, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: "You asked for this change; another admin must approve it.",
    });
    await expect(changes.decideServiceChange(erin, { changeId, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(/You own this service identity/),
    });
    await expect(changes.decideServiceChange(lee, { changeId, decision: "approve", comment: "" })).rejects.toMatchObject({ code: "forbidden" });
    const daveByToken = await principalOf(t.dave!);
    await expect(changes.decideServiceChange(daveByToken, { changeId, decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(/signed in to the portal/),
    });
    await expect(
      services.createServiceIdentity(dave, { name: "approver-bot", description: "again", groups: ["engineering-leads"], requestOnly: false }),
    ).rejects.toMatchObject({ code: "conflict" });
    // A third admin, owner of nothing here, carries it out; all of it is audited.
    const gwen = await fx.user("gwen@example.com", ["platform-admins"]);
    const approved = await changes.decideServiceChange(gwen, { changeId, decision: "approve", comment: "reviewed the pipeline" });
    expect(approved).toMatchObject({ status: "approved", decidedById: gwen.id });
    const made = await fx.db.user.findUniqueOrThrow({ where: { email: "approver-bot@service.latchkey" }, include: { owners: true } });
    expect(made).toMatchObject({ roles: ["requester", "approver"], requestOnly: false, createdById: dave.id });
    expect(made.owners.map((o) => o.ownerId).sort()).toEqual([dave.id, erin.id].sort());
    const events = await fx.db.auditEvent.findMany({ where: { action: { startsWith: "service_identity." } }, orderBy: { id: "asc" } });
    const mine = events.filter((e) => JSON.stringify(e.data).includes(changeId));
    expect(mine.map((e) => [e.action, e.actorEmail])).toEqual([
      ["service_identity.change_requested", "dave@example.com"],
      ["service_identity.change_approved", "gwen@example.com"],
      ["service_identity.created", "gwen@example.com"],
    ]);
    await expect(changes.decideServiceChange(erin, { changeId, decision: "reject", comment: "late" })).rejects.toMatchObject({ code: "conflict" });
  });

  it("giving an approver group to one that can approve, or lifting request-only, waits; narrowing does not", async () => {
    const created = await services.createServiceIdentity(dave, { name: "narrow-bot", description: "reads", groups: ["engineering"], requestOnly: true });
    expect(created.outcome).toBe("done");
    const id = created.service!.id;
    expect((await services.updateServiceIdentity(dave, id, { groups: ["engineering", "engineering-leads"], requestOnly: true })).outcome).toBe("done");
    const lift = await services.updateServiceIdentity(dave, id, { groups: ["engineering", "engineering-leads"], requestOnly: false });
    expect(lift.outcome).toBe("proposed");
    expect((await fx.db.user.findUniqueOrThrow({ where: { id } })).requestOnly).toBe(true);
    await changes.decideServiceChange(erin, { changeId: lift.change!.id, decision: "approve", comment: "ok" });
    expect((await fx.db.user.findUniqueOrThrow({ where: { id } })).requestOnly).toBe(false);
    const more = await services.updateServiceIdentity(dave, id, { groups: ["engineering", "engineering-leads", "quorum"], requestOnly: false });
    expect(more.outcome).toBe("proposed");
    expect((await fx.db.user.findUniqueOrThrow({ where: { id } })).groups).not.toContain("quorum");
    // The asking admin withdraws it without a reason; another admin's rejection needs one.
    await expect(changes.decideServiceChange(erin, { changeId: more.change!.id, decision: "reject", comment: "" })).rejects.toMatchObject({ code: "invalid" });
    expect((await changes.decideServiceChange(dave, { changeId: more.change!.id, decision: "reject", comment: "" })).status).toBe("cancelled");
    expect((await services.updateServiceIdentity(dave, id, { groups: ["engineering"], requestOnly: false })).outcome).toBe("done");
    await expect(changes.decideServiceChange(erin, { changeId: "no-such-change", decision: "approve", comment: "" })).rejects.toMatchObject({
      code: "not_found",
    });
    await expect(changes.decideServiceChange(erin, { changeId: 42, decision: "maybe" })).rejects.toMatchObject({ code: "invalid" });
  });

  it("a request-only identity cannot hold approvals:write, and one that still has it is refused when deciding", async () => {
    const ro = await services.createServiceIdentity(dave, { name: "ro-bot", description: "requests only", groups: ["engineering-leads"], requestOnly: true });
    await expect(tokens.createServiceToken(dave, ro.service!.id, { name: "ci", scopes: ["approvals:write"], expiresInDays: 30 })).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { scopes: expect.stringMatching(/request-only/) },
    });
    // An identity made request-only after its token got the scope: refused at decision time.
    const puppetRow = await fx.db.user.findUniqueOrThrow({ where: { email: "dave-bot@service.latchkey" } });
    await services.updateServiceIdentity(dave, puppetRow.id, { groups: puppetRow.groups, requestOnly: true });
    await expect.poll(async () => (await principalOf(t.puppet!)).requestOnly).toBe(true);
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const refused = await call(t.puppet!, "POST", `/requests/${request.id}/approve`, { comment: "x" });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(/request-only/);
    expect(await fx.db.approval.count({ where: { requestId: request.id } })).toBe(0);
  });
});

describe("the access review names the party", () => {
  it("shows a service identity's owners beside it and flags approvals within the requester's party", async () => {
    const { accessReview } = await import("@/lib/history/review");
    const review = await accessReview({ from: new Date(Date.now() - 86_400_000), to: new Date(Date.now() + 86_400_000) });
    const byPuppet = review.grants.find((g) => g.requester === "dave-bot@service.latchkey" && g.targetId === "payments-api-production")!;
    expect(byPuppet).toMatchObject({ requesterOwners: ["dave@example.com"], approvedBy: [{ email: "lee@example.com", owners: [] }], sameParty: false });
    const twoPerson = review.grants.find((g) => g.targetId === "two-person")!;
    expect(twoPerson.approvedBy).toEqual(
      expect.arrayContaining([expect.objectContaining({ email: "dave-bot@service.latchkey", owners: ["dave@example.com"] })]),
    );
    // A grant approved by the owner's identity before owners counted (written as an older version would have) is flagged.
    const request = await engine.createRequest(dave, "temporary-access", validInput({ targetId: "payments-api-staging", role: "write" }));
    const puppetRow = await fx.db.user.findUniqueOrThrow({ where: { email: "dave-bot@service.latchkey" } });
    await fx.db.approval.create({
      data: { requestId: request.id, approverId: puppetRow.id, decision: "approve", comment: "legacy", approverGroups: puppetRow.groups },
    });
    await fx.db.accessRequest.update({
      where: { id: request.id },
      data: { status: "active", activatedAt: new Date(), expiresAt: new Date(Date.now() + 3_600_000) },
    });
    const again = await accessReview({ from: new Date(Date.now() - 86_400_000), to: new Date(Date.now() + 86_400_000) });
    expect(again.grants.find((g) => g.requestId === request.id)).toMatchObject({
      sameParty: true,
      approvedBy: [{ email: "dave-bot@service.latchkey", owners: ["dave@example.com"] }],
    });
  });
});
