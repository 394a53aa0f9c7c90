import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { loadRoutes, startApiServer } from "../helpers/api-server";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let tokens: typeof import("@/lib/identity/tokens");
let services: typeof import("@/lib/identity/service-identities");
let alice: Principal;
let bob: Principal;
let dave: Principal;
let erin: Principal;
let changes: typeof import("@/lib/identity/service-changes");
/** Tokens by role in the story: alice requests, bob approves, ci is a request-only service. */
const t: Record<string, string> = {};

beforeAll(async () => {
  fx = await engineFixture();
  tokens = await import("@/lib/identity/tokens");
  services = await import("@/lib/identity/service-identities");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  dave = await fx.user("dave@example.com", ["platform-admins"]);
  t.alice = (
    await tokens.createPersonalToken(alice, { name: "laptop", scopes: ["requests:read", "requests:write", "credentials:read"], expiresInDays: 30 })
  ).secret;
  t.aliceReadOnly = (await tokens.createPersonalToken(alice, { name: "dashboard", scopes: ["requests:read"], expiresInDays: 30 })).secret;
  t.bob = (await tokens.createPersonalToken(bob, { name: "bot", scopes: ["requests:read", "requests:write", "approvals:write"], expiresInDays: 30 })).secret;
  erin = await fx.user("erin@example.com", ["platform-admins"]);
  changes = await import("@/lib/identity/service-changes");
  // An identity that can approve is made by one admin and approved by another; its token
  // gets approvals:write while it may approve, then it is made request-only (no approval needed).
  const proposed = await services.createServiceIdentity(dave, {
    name: "deploy-bot",
    description: "CI deploys",
    groups: ["engineering-leads"],
    requestOnly: false,
  });
  const ciId = (await changes.decideServiceChange(erin, { changeId: proposed.change!.id, decision: "approve", comment: "CI approves deploys" })).serviceId!;
  t.ci = (
    await tokens.createServiceToken(dave, ciId, { name: "github-actions", scopes: ["requests:read", "requests:write", "approvals:write"], expiresInDays: 90 })
  ).secret;
  expect((await services.updateServiceIdentity(dave, ciId, { groups: ["engineering-leads"], requestOnly: true })).outcome).toBe("done");
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

async function call(token: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${api.url}/api/v1${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
}

const create = (token: string, input = validInput()) => call(token, "POST", "/requests", { workflowId: "temporary-access", input });

describe("a request made, approved and collected through the API", () => {
  it("goes from request to credential with the same engine as the portal, audited by token kind", async () => {
    const made = await create(t.alice!);
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({
      status: "pending",
      requester: "alice@example.com",
      targetId: "payments-api-staging",
      stages: [{ name: "Approval", state: "current" }],
    });
    const id = made.body.id as string;

    expect((await call(t.bob!, "GET", "/approvals")).body.requests.map((r: { id: string }) => r.id)).toContain(id);
    const approved = await call(t.bob!, "POST", `/requests/${id}/approve`, { comment: "ok from the bot" });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: "active", decisions: [{ approver: "bob@example.com", decision: "approve", comment: "ok from the bot" }] });

    const status = await call(t.alice!, "GET", `/requests/${id}`);
    expect(status.body.credential).toMatchObject({ revealable: true, revealedAt: null });
    const first = await call(t.alice!, "POST", `/requests/${id}/credential`);
    expect(first.status).toBe(200);
    expect(first.body.credential.split(".")).toHaveLength(3);
    const second = await call(t.alice!, "POST", `/requests/${id}/credential`);
    expect(second.status).toBe(409);
    expect(second.body.detail).toMatch(/already shown once/);

    const events = await fx.db.auditEvent.findMany({ where: { requestId: id }, orderBy: { id: "asc" } });
    const created = events.find((e) => e.action === "request.created")!;
    const decided = events.find((e) => e.action === "request.approved")!;
    const aliceToken = await fx.db.apiToken.findFirstOrThrow({ where: { userId: alice.id, name: "laptop" } });
    expect(created).toMatchObject({ actorType: "personal_token", actorEmail: "alice@example.com", data: expect.objectContaining({ tokenId: aliceToken.id }) });
    expect(decided).toMatchObject({ actorType: "personal_token", actorEmail: "bob@example.com" });
    expect(aliceToken.lastUsedAt).not.toBeNull();
    expect(aliceToken.tokenHash).not.toContain(t.alice!.slice(5));
  });

  it("lists the workflows the identity may request, with fields and limits", async () => {
    const { body } = await call(t.alice!, "GET", "/workflows");
    const access = body.workflows.find((w: { id: string }) => w.id === "temporary-access");
    expect(access.fields.map((f: { name: string }) => f.name)).toEqual(expect.arrayContaining(["targetId", "role", "durationMinutes", "justification"]));
    expect(access.targets.find((x: { id: string }) => x.id === "payments-api-staging")).toMatchObject({
      roles: ["read", "write"],
      minDurationMinutes: 15,
      maxDurationMinutes: 480,
    });
    expect((await call(t.alice!, "GET", "/me")).body).toMatchObject({ email: "alice@example.com", roles: ["requester"], token: { kind: "personal_token" } });
  });

  it("lets the requester cancel a pending request", async () => {
    const { body } = await create(t.alice!);
    expect((await call(t.alice!, "POST", `/requests/${body.id}/cancel`)).body).toMatchObject({ status: "cancelled" });
    expect((await call(t.alice!, "POST", `/requests/${body.id}/cancel`)).status).toBe(200);
  });
});

describe("no token approves what its identity asked for", () => {
  it("refuses a personal token approving its own person's request", async () => {
    const { body } = await create(t.bob!);
    const own = await call(t.bob!, "POST", `/requests/${body.id}/approve`, { comment: "me" });
    expect(own.status).toBe(403);
    expect(own.body.detail).toMatch(/own request/i);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: body.id } })).status).toBe("pending");
  });

  it("refuses a request-only service identity, even in an approver group, and records the service token as actor", async () => {
    const { body } = await create(t.ci!);
    expect(body.requester).toBe("deploy-bot@service.latchkey");
    const other = await create(t.alice!);
    const attempt = await call(t.ci!, "POST", `/requests/${other.body.id}/approve`, { comment: "lgtm" });
    expect(attempt.status).toBe(403);
    expect(attempt.body.detail).toMatch(/request-only/);
    expect((await call(t.ci!, "GET", "/approvals")).body.requests).toEqual([]);
    expect(await fx.db.approval.count({ where: { requestId: other.body.id } })).toBe(0);
    const created = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: body.id, action: "request.created" } });
    expect(created.actorType).toBe("service_token");
  });

  it("lets an admin lift request-only once another admin approves, audited, after which the service may approve others", async () => {
    const ci = await fx.db.user.findUniqueOrThrow({ where: { email: "deploy-bot@service.latchkey" } });
    const updatesBefore = await fx.db.auditEvent.count({ where: { action: "service_identity.updated" } });
    const lifted = await services.updateServiceIdentity(dave, ci.id, { groups: ["engineering-leads"], requestOnly: false });
    expect(lifted.outcome).toBe("proposed");
    const other = await create(t.alice!);
    expect((await call(t.ci!, "POST", `/requests/${other.body.id}/approve`, { comment: "too early" })).body.detail).toMatch(/request-only/);
    await changes.decideServiceChange(erin, { changeId: lifted.change!.id, decision: "approve", comment: "ok" });
    expect((await call(t.ci!, "POST", `/requests/${other.body.id}/approve`, { comment: "pipeline green" })).body.status).toBe("active");
    expect(await fx.db.auditEvent.count({ where: { action: "service_identity.updated" } })).toBe(updatesBefore + 1);
    await services.updateServiceIdentity(dave, ci.id, { groups: ["engineering-leads"], requestOnly: true });
  });
});

describe("refusals", () => {
  it("401 without a token, with a revoked, an expired or a made-up one", async () => {
    expect((await call(null, "GET", "/requests")).status).toBe(401);
    expect((await call("lkp_" + "A".repeat(43), "GET", "/requests")).body.detail).toBe("Unknown API token.");
    expect((await call("nonsense", "GET", "/requests")).status).toBe(401);
    const { secret, token } = await tokens.createPersonalToken(alice, { name: "short-lived", scopes: ["requests:read"], expiresInDays: 1 });
    expect((await call(secret, "GET", "/requests")).status).toBe(200);
    // Changed behind the application's back: the kept token is forgotten when PostgreSQL's
    // notification arrives (milliseconds; the feed's heartbeat bounds it at 2.5 s).
    await fx.db.apiToken.update({ where: { id: token.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await expect.poll(async () => (await call(secret, "GET", "/requests")).body?.detail, { timeout: 2_500, interval: 20 }).toMatch(/expired/);
    const revocable = await tokens.createPersonalToken(alice, { name: "to revoke", scopes: ["requests:read"], expiresInDays: 1 });
    await tokens.revokeToken(alice, revocable.token.id);
    const refused = await call(revocable.secret, "GET", "/requests");
    expect(refused.status).toBe(401);
    expect(refused.body.detail).toMatch(/revoked/);
    expect(await fx.db.auditEvent.count({ where: { action: "token.revoked" } })).toBe(1);
  });

  it("403 for a scope the token lacks; no state changes", async () => {
    const before = await fx.db.accessRequest.count();
    const r = await create(t.aliceReadOnly!);
    expect(r.status).toBe(403);
    expect(r.headers.get("content-type")).toBe("application/problem+json");
    expect(r.body).toEqual({
      type: "urn:latchkey:problem:insufficient_scope",
      title: "Token lacks the scope",
      status: 403,
      detail: "This token lacks the requests:write scope.",
      code: "insufficient_scope",
      scope: "requests:write",
    });
    expect(await fx.db.accessRequest.count()).toBe(before);
  });

  it("404 for another person's request; 400 with the field for invalid input; 415, 413 and malformed JSON", async () => {
    const mine = await create(t.bob!);
    expect((await call(t.alice!, "GET", `/requests/${mine.body.id}`)).status).toBe(404);
    expect((await call(t.alice!, "POST", `/requests/${mine.body.id}/cancel`)).status).toBe(403);
    const bad = await create(t.alice!, validInput({ durationMinutes: 10_000 }));
    expect(bad.status).toBe(400);
    expect(bad.body.fields.durationMinutes).toMatch(/between 15m and 8h/);
    const extra = await call(t.alice!, "POST", "/requests", { workflowId: "temporary-access", input: validInput(), admin: true });
    expect(extra.status).toBe(400);
    const hidden = await create(t.alice!, { ...validInput(), approved: true } as never);
    expect(hidden.status).toBe(400);
    expect((await call(t.alice!, "POST", "/requests", "workflowId=x", { "content-type": "text/plain" })).status).toBe(415);
    expect((await call(t.alice!, "POST", "/requests", "{not json")).body.code).toBe("invalid_json");
    const huge = await call(t.alice!, "POST", "/requests", { workflowId: "temporary-access", input: validInput({ justification: "x".repeat(70_000) }) });
    expect(huge.status).toBe(413);
    expect((await call(t.alice!, "POST", "/requests", { workflowId: "no-such-workflow", input: {} })).status).toBe(404);
  });

  it("a token cannot make tokens; scopes are checked against the identity", async () => {
    const { authenticateToken } = await import("@/lib/identity/tokens");
    const who = await authenticateToken(t.alice!);
    if (!who.ok) throw new Error(who.reason);
    await expect(tokens.createPersonalToken(who.who, { name: "x", scopes: ["requests:read"], expiresInDays: 1 })).rejects.toMatchObject({ code: "forbidden" });
    await expect(tokens.createPersonalToken(alice, { name: "x", scopes: ["approvals:write"], expiresInDays: 1 })).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { scopes: expect.stringMatching(/approver/) },
    });
    await expect(tokens.createPersonalToken(alice, { name: "x", scopes: ["requests:read"], expiresInDays: 120 })).rejects.toMatchObject({ code: "invalid" });
    await expect(tokens.createServiceToken(alice, "anything", { name: "x", scopes: ["requests:read"], expiresInDays: 1 })).rejects.toMatchObject({
      code: "forbidden",
    });
    await expect(
      services.createServiceIdentity(alice, { name: "sneaky", description: "x", groups: ["platform-admins"], requestOnly: false }),
    ).rejects.toMatchObject({ code: "forbidden" });
    await expect(services.createServiceIdentity(dave, { name: "typo", description: "x", groups: ["no-such-group"], requestOnly: false })).rejects.toMatchObject(
      { code: "invalid" },
    );
  });
});

describe("the OpenAPI document", () => {
  it("describes every /api/v1 route and method with its scope, and nothing else", async () => {
    const { openApiDocument } = await import("@/lib/api/openapi");
    const documented = new Map<string, string | undefined>();
    for (const [path, item] of Object.entries(openApiDocument.paths)) {
      for (const [method, operation] of Object.entries(item))
        documented.set(`${method.toUpperCase()} ${path}`, (operation as { "x-latchkey-scope"?: string })["x-latchkey-scope"]);
    }
    const served = new Map<string, string | undefined>();
    for (const route of await loadRoutes("api/v1")) {
      const path = route.template.replace(/^\/api\/v1/, "").replace(/\[(\w+)\]/g, "{$1}");
      if (path === "/openapi.json") continue;
      for (const [method, handler] of Object.entries(route.module)) {
        if (typeof handler === "function" && /^[A-Z]+$/.test(method)) served.set(`${method} ${path}`, handler.scope);
      }
    }
    expect([...served.keys()].sort()).toEqual([...documented.keys()].sort());
    for (const [key, scope] of served) expect(documented.get(key), key).toBe(scope);
    const body = await (await fetch(`${api.url}/api/v1/openapi.json`)).json();
    expect(body).toMatchObject({ openapi: "3.1.0", servers: [{ url: "/api/v1" }] });
  });
});
