import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { loadRoutes, startApiServer } from "../helpers/api-server";
import { entra, okta, scimCaller } from "../fakes/scim-clients";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * The SCIM service provider against the real route handlers and a real PostgreSQL, driven
 * by clients that send what Okta and Entra send. What matters most: a deactivation or a
 * group removal pushed by the identity provider makes the person's credential refused by
 * forward-auth at once, audited with the reason.
 */

const PROXY_SECRET = randomBytes(24).toString("base64url");
let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let engine: typeof import("@/lib/approvals/engine");
let tokens: typeof import("@/lib/identity/tokens");
let dave: Principal;
let bob: Principal;
let oktaToken: string;
let entraToken: string;
let directoryId: string;

beforeAll(async () => {
  fx = await engineFixture({
    LATCHKEY_FORWARD_AUTH_PROXIES: `edge-nginx=${PROXY_SECRET}`,
    LATCHKEY_RATE_LIMIT_TOKEN: "100000",
    LATCHKEY_RATE_LIMIT_ADDRESS: "100000",
  });
  engine = await import("@/lib/approvals/engine");
  tokens = await import("@/lib/identity/tokens");
  const services = await import("@/lib/identity/service-identities");
  dave = await fx.user("dave@example.com", ["platform-admins"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  const directory = await services.createServiceIdentity(dave, {
    name: "identity-provider",
    description: "Okta and Entra provisioning",
    groups: ["engineering"],
    requestOnly: true,
  });
  directoryId = directory.service!.id;
  oktaToken = (await tokens.createServiceToken(dave, directory.service!.id, { name: "okta", scopes: ["scim"], expiresInDays: 365 })).secret;
  entraToken = (await tokens.createServiceToken(dave, directory.service!.id, { name: "entra", scopes: ["scim"], expiresInDays: 365 })).secret;
  api = await startApiServer(["api", "scim"]);
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

async function forward(token: string) {
  const response = await fetch(`${api.url}/api/forward-auth`, {
    headers: {
      "x-forwarded-host": "payments.staging.test",
      "x-forwarded-uri": "/",
      "x-forwarded-method": "GET",
      "x-latchkey-proxy-secret": PROXY_SECRET,
      authorization: `Bearer ${token}`,
    },
  });
  return response.status;
}

/** The person asks for payments-api (staging), bob approves, the person reveals the credential. */
async function grantFor(userId: string) {
  const user = await fx.db.user.findUniqueOrThrow({ where: { id: userId } });
  const who: Principal = { id: user.id, email: user.email, groups: user.groups, roles: user.roles as Principal["roles"] };
  const request = await engine.createRequest(who, "temporary-access", validInput());
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
  const { token } = await engine.revealCredential(who, request.id);
  return { requestId: request.id, token, who };
}

const ERROR = "urn:ietf:params:scim:api:messages:2.0:Error";

describe("Okta's provisioning calls", () => {
  it("creates a person, pushes a group, removes them from it, deactivates them: each change ends their access at once", async () => {
    const client = okta(api.url, oktaToken);
    expect((await client.findUser("erin@example.com")).body).toMatchObject({ totalResults: 0, Resources: [] });
    const created = await client.createUser({ login: "erin@example.com", given: "Erin", family: "Example", oktaId: "00u1erin" });
    expect(created.status).toBe(201);
    expect(created.type).toMatch(/^application\/scim\+json/);
    expect(created.body).toMatchObject({
      userName: "erin@example.com",
      externalId: "00u1erin",
      active: true,
      name: { givenName: "Erin", familyName: "Example" },
      emails: [{ value: "erin@example.com", primary: true }],
      meta: { resourceType: "User" },
    });
    const erinId = created.body.id as string;
    expect(await fx.db.auditEvent.findFirstOrThrow({ where: { action: "scim.user.created", data: { path: ["userId"], equals: erinId } } })).toMatchObject({
      actorType: "service_token",
      route: "POST /scim/v2/Users",
    });
    // The lookup Okta makes before its next call finds the same person.
    expect((await client.findUser("erin@example.com")).body).toMatchObject({ totalResults: 1, Resources: [{ id: erinId }] });
    // Creating her twice is refused as the RFC says.
    const again = await client.createUser({ login: "erin@example.com", given: "Erin", family: "Example", oktaId: "00u1erin" });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ schemas: [ERROR], status: "409", scimType: "uniqueness" });

    const group = await client.pushGroup("engineering");
    expect(group.status).toBe(201);
    expect(group.body).toMatchObject({ displayName: "engineering", members: [] });
    expect((await client.addMember(group.body.id, erinId, "erin@example.com")).status).toBe(204);
    expect((await client.call("GET", `/Groups/${group.body.id}`)).body.members).toEqual([
      expect.objectContaining({ value: erinId, display: "erin@example.com" }),
    ]);
    expect((await client.call("GET", `/Users/${erinId}`)).body.groups).toEqual([expect.objectContaining({ value: group.body.id, display: "engineering" })]);

    const first = await grantFor(erinId);
    expect(await forward(first.token)).toBe(200);
    // Production needs a lead's approval and is for engineering only: it waits, and goes with the group.
    const waiting = await engine.createRequest(first.who, "temporary-access", validInput({ targetId: "payments-api-production" }));
    expect(waiting.status).toBe("pending");

    expect((await client.removeMember(group.body.id, erinId)).status).toBe(204);
    expect(await forward(first.token)).toBe(401);
    const revoked = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: first.requestId, action: "grant.revoked" } });
    expect(revoked).toMatchObject({ actorType: "service_token", data: expect.objectContaining({ reason: "directory: removed from engineering" }) });
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: erinId } })).groups).toEqual([]);
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: waiting.id } })).toMatchObject({ status: "cancelled" });

    // Back in the group, a new grant; then Okta deactivates her.
    await client.addMember(group.body.id, erinId, "erin@example.com");
    const second = await grantFor(erinId);
    await fx.db.session.create({ data: { sessionToken: `erin-${randomBytes(8).toString("hex")}`, userId: erinId, expires: new Date(Date.now() + 3_600_000) } });
    const laptop = await tokens.createPersonalToken(second.who, { name: "laptop", scopes: ["requests:read"], expiresInDays: 30 });
    expect(await forward(second.token)).toBe(200);
    const deactivated = await client.deactivate(erinId);
    expect(deactivated.status).toBe(200);
    expect(deactivated.body.active).toBe(false);
    expect(await forward(second.token)).toBe(401);
    expect(await fx.db.session.count({ where: { userId: erinId } })).toBe(0);
    expect((await fx.db.apiToken.findUniqueOrThrow({ where: { id: laptop.token.id } })).revokedAt).not.toBeNull();
    expect((await fetch(`${api.url}/api/v1/me`, { headers: { authorization: `Bearer ${laptop.secret}` } })).status).toBe(401);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: second.requestId } })).status).toBe("revoked");
    const changed = await fx.db.auditEvent.findFirstOrThrow({
      where: { action: "user.directory_changed", data: { path: ["deactivated"], equals: true } },
      orderBy: { id: "desc" },
    });
    expect(changed).toMatchObject({
      actorType: "service_token",
      route: `PATCH /scim/v2/Users/${erinId}`,
      data: expect.objectContaining({ email: "erin@example.com", source: "scim" }),
    });

    // Okta retries the same call: nothing more happens, nothing more is recorded.
    const events = await fx.db.auditEvent.count();
    expect((await client.deactivate(erinId)).body.active).toBe(false);
    expect(await fx.db.auditEvent.count()).toBe(events);

    // Reactivated, she is active again but gets no old grant back.
    expect((await client.reactivate(erinId)).body.active).toBe(true);
    expect(await forward(second.token)).toBe(401);
  });

  it("renames a pushed group: members keep membership under the new name, and a profile push by PUT updates the person", async () => {
    const client = okta(api.url, oktaToken);
    const gail = (await client.createUser({ login: "gail@example.com", given: "Gail", family: "Example", oktaId: "00u1gail" })).body.id as string;
    const group = (await client.pushGroup("oncall-old")).body.id as string;
    await client.addMember(group, gail, "gail@example.com");
    expect((await client.renameGroup(group, "oncall")).status).toBe(204);
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: gail } })).groups).toEqual(["oncall"]);
    expect((await client.findGroup("oncall")).body).toMatchObject({
      totalResults: 1,
      Resources: [{ id: group, displayName: "oncall", members: [{ value: gail }] }],
    });
    expect((await client.findGroup("oncall-old")).body.totalResults).toBe(0);

    const put = await client.updateUser(gail, { login: "gail@example.com", given: "Gail", family: "Renamed", oktaId: "00u1gail", active: true });
    expect(put.status).toBe(200);
    expect(put.body.name).toEqual({ givenName: "Gail", familyName: "Renamed" });
    expect(await fx.db.auditEvent.count({ where: { action: "scim.user.replaced", data: { path: ["userId"], equals: gail } } })).toBe(1);
    // The same PUT again changes nothing and records nothing.
    const events = await fx.db.auditEvent.count();
    await client.updateUser(gail, { login: "gail@example.com", given: "Gail", family: "Renamed", oktaId: "00u1gail", active: true });
    expect(await fx.db.auditEvent.count()).toBe(events);

    expect((await client.deleteGroup(group)).status).toBe(204);
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: gail } })).groups).toEqual([]);
    expect((await client.call("GET", `/Groups/${group}`)).status).toBe(404);
  });
});

describe("Entra's provisioning calls", () => {
  it("passes the connection test, creates a person with the enterprise extension, updates them, removes them from a group and disables them", async () => {
    const client = entra(api.url, entraToken);
    expect(await client.testConnection()).toMatchObject({ status: 200, body: { totalResults: 0 } });
    const created = await client.createUser({
      upn: "frank@contoso.com",
      mail: "frank@contoso.com",
      given: "Frank",
      family: "Contoso",
      objectId: "5f1e-frank",
      department: "Payments",
    });
    expect(created.status).toBe(201);
    const frankId = created.body.id as string;
    expect(created.body).toMatchObject({ userName: "frank@contoso.com", externalId: "5f1e-frank", displayName: "Frank Contoso", active: true });

    expect((await client.findGroup("engineering-leads")).body.totalResults).toBe(0);
    const group = await client.createGroup("engineering-leads", "8aa1-leads");
    expect(group.status).toBe(201);
    // Creating a group never takes it from anyone: bob, who has it from his sign-in, keeps it.
    expect(group.body.members).toEqual([expect.objectContaining({ value: bob.id })]);
    expect((await client.addMembers(group.body.id, [frankId])).status).toBe(204);
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: frankId } })).roles).toEqual(["requester", "approver"]);
    const withoutMembers = await client.getGroupWithoutMembers(group.body.id);
    expect(withoutMembers.body).toMatchObject({ id: group.body.id, displayName: "engineering-leads", externalId: "8aa1-leads" });
    expect(withoutMembers.body).not.toHaveProperty("members");

    const updated = await client.updateAttributes(frankId, { mail: "frank.c@contoso.com", family: "Contoso-Smith", department: "Risk" });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ emails: [{ value: "frank.c@contoso.com" }], name: { familyName: "Contoso-Smith" } });
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: frankId } })).email).toBe("frank.c@contoso.com");

    const grant = await grantFor(frankId);
    expect(await forward(grant.token)).toBe(200);
    expect((await client.removeMembers(group.body.id, [frankId])).status).toBe(204);
    expect(await forward(grant.token)).toBe(401);

    await client.addMembers(group.body.id, [frankId]);
    const next = await grantFor(frankId);
    expect(await forward(next.token)).toBe(200);
    const disabled = await client.disable(frankId);
    expect(disabled.status).toBe(200);
    expect(disabled.body.active).toBe(false);
    expect(await forward(next.token)).toBe(401);
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: frankId } })).active).toBe(false);

    expect((await client.deleteUser(frankId)).status).toBe(204);
    expect((await client.call("GET", `/Users/${frankId}`)).status).toBe(404);
    expect((await client.findUser("frank@contoso.com")).body.totalResults).toBe(0);
    expect(await fx.db.user.findUniqueOrThrow({ where: { id: frankId } })).toMatchObject({ active: false, groups: [] });
    // A removal Entra sends after the deletion is no error.
    expect((await client.removeMembers(group.body.id, [frankId])).status).toBe(204);
    // Provisioned again, Frank is the same person, active, with only the groups given to him now.
    const again = await client.createUser({
      upn: "frank@contoso.com",
      mail: "frank.c@contoso.com",
      given: "Frank",
      family: "Contoso",
      objectId: "5f1e-frank",
      department: "Payments",
    });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ id: frankId, active: true, groups: [] });
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: frankId } })).roles).toEqual([]);
    // The person and their history stay in Latchkey.
    expect(await fx.db.accessRequest.count({ where: { requesterId: frankId } })).toBe(2);
  });
});

describe("who may call SCIM", () => {
  it("refuses a missing, unknown, revoked or non-scim token in the RFC's error shape, and a scim token can do nothing else", async () => {
    const anonymous = await scimCaller(api.url, null, "test")("GET", "/Users");
    expect(anonymous).toMatchObject({ status: 401, body: { schemas: [ERROR], status: "401" } });
    expect(anonymous.type).toMatch(/^application\/scim\+json/);
    expect((await scimCaller(api.url, "lks_" + "x".repeat(43), "test")("GET", "/Users")).status).toBe(401);

    const services = await import("@/lib/identity/service-identities");
    const ci = await services.createServiceIdentity(dave, { name: "ci-bot", description: "CI", groups: ["engineering"], requestOnly: true });
    const ciToken = (await tokens.createServiceToken(dave, ci.service!.id, { name: "ci", scopes: ["requests:read", "requests:write"], expiresInDays: 30 }))
      .secret;
    const refused = await scimCaller(api.url, ciToken, "test")("GET", "/Users");
    expect(refused).toMatchObject({ status: 403, body: { schemas: [ERROR], status: "403", detail: expect.stringMatching(/scim scope/) } });

    // The scim token on the rest of the API: refused.
    for (const [method, path] of [
      ["GET", "/api/v1/me"],
      ["GET", "/api/v1/approvals"],
      ["POST", "/api/v1/requests"],
    ] as const) {
      const response = await fetch(`${api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${oktaToken}`, "content-type": "application/json" },
        body: method === "POST" ? "{}" : undefined,
      });
      expect(response.status, path).toBe(403);
    }
    const introspect = await fetch(`${api.url}/api/oauth/introspect`, {
      method: "POST",
      headers: { authorization: `Bearer ${oktaToken}`, "content-type": "application/x-www-form-urlencoded" },
      body: "token=x",
    });
    expect(introspect.status).toBe(403);

    // scim goes on a service token alone.
    await expect(tokens.createServiceToken(dave, directoryId, { name: "mixed", scopes: ["scim", "requests:read"], expiresInDays: 30 })).rejects.toThrow(
      /cannot be combined/,
    );
    await expect(tokens.createPersonalToken(dave, { name: "mine", scopes: ["scim"], expiresInDays: 30 })).rejects.toThrow(/service token/);

    const spare = await tokens.createServiceToken(dave, directoryId, { name: "spare", scopes: ["scim"], expiresInDays: 30 });
    const caller = scimCaller(api.url, spare.secret, "test");
    expect((await caller("GET", "/ServiceProviderConfig")).status).toBe(200);
    await tokens.revokeToken(dave, spare.token.id);
    expect(await fx.db.apiToken.count({ where: { id: spare.token.id, revokedAt: { not: null } } })).toBe(1);
    await expect.poll(async () => (await caller("GET", "/ServiceProviderConfig")).status).toBe(401);
  });

  it("never lists or changes a service identity", async () => {
    const client = okta(api.url, oktaToken);
    expect((await client.call("GET", `/Users/${directoryId}`)).status).toBe(404);
    expect((await client.deactivate(directoryId)).status).toBe(404);
    const all = await client.call("GET", "/Users?count=200");
    expect(all.body.Resources.map((u: { id: string }) => u.id)).not.toContain(directoryId);
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: directoryId } })).active).toBe(true);
  });
});

describe("errors in the RFC's shapes", () => {
  const PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
  const USER = "urn:ietf:params:scim:schemas:core:2.0:User";

  it("answers malformed bodies, unknown attributes, unsupported filters and bad paths with status and scimType, changing nothing", async () => {
    const call = scimCaller(api.url, oktaToken, "test");
    const holly = (await call("POST", "/Users", { schemas: [USER], userName: "holly@example.com" })).body.id as string;
    const group = (await call("POST", "/Groups", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "audit" })).body.id as string;
    expect((await call("POST", "/Groups", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "quorum" })).status).toBe(201);
    const before = await fx.db.auditEvent.count();
    const cases: [string, string, unknown, number, string | undefined, RegExp][] = [
      ["POST", "/Users", "{", 400, "invalidSyntax", /not valid JSON/],
      ["POST", "/Users", [], 400, "invalidValue", /JSON object/],
      ["POST", "/Users", { userName: "x@example.com" }, 400, "invalidSyntax", /schemas/],
      ["POST", "/Users", { schemas: ["urn:example:custom"], userName: "x@example.com" }, 400, "invalidValue", /Unknown schema/],
      ["POST", "/Users", { schemas: [USER], userName: "x@example.com", shoeSize: 44 }, 400, "invalidValue", /no attribute "shoesize"/],
      ["POST", "/Users", { schemas: [USER], userName: "x@example.com", name: { nickname: "x" } }, 400, "invalidValue", /name has no attribute/],
      ["POST", "/Users", { schemas: [USER], userName: "not-an-email" }, 400, "invalidValue", /e-mail/],
      ["POST", "/Users", { schemas: [USER], userName: "x@example.com", active: "maybe" }, 400, "invalidValue", /true or false/],
      ["POST", "/Users", { schemas: [USER], userName: "holly@example.com" }, 409, "uniqueness", /exists/],
      ["POST", "/Users", { schemas: [USER], userName: "x\u0000@example.com" }, 400, "invalidValue", /NUL/],
      ["GET", `/Users?filter=${encodeURIComponent('userName co "holly"')}`, undefined, 400, "invalidFilter", /eq operator only/],
      ["GET", `/Users?filter=${encodeURIComponent('userName eq "a" or userName eq "b"')}`, undefined, 400, "invalidFilter", /and only/],
      ["GET", `/Users?filter=${encodeURIComponent('title eq "Engineer"')}`, undefined, 400, "invalidFilter", /not title/],
      ["GET", `/Users?filter=${encodeURIComponent('userName eq "unterminated')}`, undefined, 400, "invalidFilter", /not closed/],
      ["GET", `/Users?filter=${encodeURIComponent("userName eq")}`, undefined, 400, "invalidFilter", /no value/],
      ["GET", "/Users?count=many", undefined, 400, "invalidValue", /whole number/],
      ["PATCH", `/Users/${holly}`, { schemas: [PATCH_OP], Operations: [{ op: "replace", path: "groups", value: [] }] }, 400, "mutability", /read-only/],
      ["PATCH", `/Users/${holly}`, { schemas: [PATCH_OP], Operations: [{ op: "replace", path: "shoeSize", value: 44 }] }, 400, "invalidPath", /no attribute/],
      [
        "PATCH",
        `/Users/${holly}`,
        { schemas: [PATCH_OP], Operations: [{ op: "move", path: "active", value: false }] },
        400,
        "invalidSyntax",
        /add, replace or remove/,
      ],
      ["PATCH", `/Users/${holly}`, { schemas: [PATCH_OP], Operations: [{ op: "remove" }] }, 400, "noTarget", /needs a path/],
      ["PATCH", `/Users/${holly}`, { schemas: [PATCH_OP], Operations: [] }, 400, "invalidSyntax", /non-empty/],
      ["PATCH", `/Users/${holly}`, { Operations: [{ op: "replace", path: "active", value: false }] }, 400, "invalidSyntax", /schemas/],
      ["PATCH", `/Groups/${group}`, { schemas: [PATCH_OP], Operations: [{ op: "remove", path: 'members[value eq "nobody"]' }] }, 400, "noTarget", /No user/],
      [
        "PATCH",
        `/Groups/${group}`,
        { schemas: [PATCH_OP], Operations: [{ op: "add", path: "members", value: [{ value: "nobody" }] }] },
        400,
        "invalidValue",
        /No user/,
      ],
      [
        "PATCH",
        `/Groups/${group}`,
        { schemas: [PATCH_OP], Operations: [{ op: "remove", path: 'members[display co "x"]' }] },
        400,
        "invalidPath",
        /eq operator only/,
      ],
      ["PUT", `/Groups/${group}`, { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "quorum" }, 409, "uniqueness", /exists/],
      ["GET", "/Users/does-not-exist", undefined, 404, undefined, /was not found/],
      ["GET", "/Schemas/__proto__", undefined, 404, undefined, /was not found/],
    ];
    for (const [method, path, body, status, scimType, detail] of cases) {
      const answer = await call(method, path, body);
      const cell = `${method} ${path} ${typeof body === "string" ? body : JSON.stringify(body)}`;
      expect(answer.status, cell).toBe(status);
      expect(answer.type, cell).toMatch(/^application\/scim\+json/);
      expect(answer.body, cell).toMatchObject({ schemas: [ERROR], status: String(status), ...(scimType ? { scimType } : {}) });
      expect(answer.body.detail, cell).toMatch(detail);
    }
    const wrongType = await fetch(`${api.url}/scim/v2/Users`, {
      method: "POST",
      headers: { authorization: `Bearer ${oktaToken}`, "content-type": "text/plain" },
      body: "{}",
    });
    expect(wrongType.status).toBe(415);
    expect(await wrongType.json()).toMatchObject({ schemas: [ERROR], status: "415" });
    expect(await fx.db.auditEvent.count()).toBe(before);
    expect((await fx.db.user.findUniqueOrThrow({ where: { id: holly } })).active).toBe(true);
  });

  // Found by tests/integration/scim-fuzz.test.ts (seed 1859103759: a DELETE of "/Groups/.", the collection once the dot is resolved).
  it("answers a method an endpoint does not take with 405 in the RFC's error shape and the methods it does take", async () => {
    const someone = (await fx.db.user.findFirstOrThrow({ where: { email: "holly@example.com" } })).id;
    const cases: [string, string, string][] = [
      ["DELETE", "/Users", "GET, POST"],
      ["PUT", "/Groups", "GET, POST"],
      ["PATCH", "/Users", "GET, POST"],
      ["POST", `/Users/${someone}`, "GET, PUT, PATCH, DELETE"],
      ["POST", "/Groups/anything", "GET, PUT, PATCH, DELETE"],
      ["DELETE", "/Schemas", "GET"],
      ["POST", "/ServiceProviderConfig", "GET"],
      ["PUT", "/ResourceTypes/User", "GET"],
    ];
    const before = await fx.db.auditEvent.count();
    for (const [method, path, allow] of cases) {
      const response = await fetch(`${api.url}/scim/v2${path}`, {
        method,
        headers: { authorization: `Bearer ${oktaToken}`, "content-type": "application/scim+json" },
        body: method === "DELETE" ? undefined : "{",
      });
      const cell = `${method} ${path}`;
      expect(response.status, cell).toBe(405);
      expect(response.headers.get("content-type"), cell).toMatch(/^application\/scim\+json/);
      expect(response.headers.get("allow"), cell).toBe(`${allow}, HEAD, OPTIONS`);
      expect(await response.json(), cell).toEqual({ schemas: [ERROR], status: "405", detail: `This endpoint takes ${allow} only.` });
    }
    expect(await fx.db.auditEvent.count()).toBe(before);
  });

  it("has every /scim/v2 route answer every method itself, so none falls to Next.js's bodiless 405", async () => {
    const routes = await loadRoutes("scim");
    expect(routes.length).toBeGreaterThan(5);
    for (const route of routes)
      for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) expect(route.module, `${route.template} ${method}`).toHaveProperty(method);
  });

  it("answers OPTIONS with the methods an endpoint takes, the same Allow as its 405", async () => {
    for (const [path, allow] of [
      ["/Users", "GET, POST, HEAD, OPTIONS"],
      ["/Groups/anything", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"],
      ["/Schemas", "GET, HEAD, OPTIONS"],
    ] as const) {
      const response = await fetch(`${api.url}/scim/v2${path}`, { method: "OPTIONS" });
      expect(response.status, path).toBe(204);
      expect(response.headers.get("allow"), path).toBe(allow);
    }
  });

  it("answers a path that is no endpoint with 404 in the RFC's error shape, and a trailing slash as Next.js does", async () => {
    for (const [method, path] of [
      ["GET", "/Nope"],
      ["DELETE", "/Users/someone/more"],
      ["GET", ""],
      ["POST", "/Groups/x/members"],
    ] as const) {
      const response = await fetch(`${api.url}/scim/v2${path}`, { method, headers: { authorization: `Bearer ${oktaToken}` } });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(response.headers.get("content-type")).toMatch(/^application\/scim\+json/);
      expect(await response.json()).toEqual({ schemas: [ERROR], status: "404", detail: `There is no SCIM endpoint at "/scim/v2${path}".` });
    }
    // "/Groups/." is "/Groups/" once the dot is resolved: redirected to the collection, which takes no DELETE.
    const slash = await fetch(`${api.url}/scim/v2/Groups/.`, { method: "DELETE", headers: { authorization: `Bearer ${oktaToken}` } });
    expect(slash.redirected).toBe(true);
    expect(slash.status).toBe(405);
    expect(await slash.json()).toMatchObject({ schemas: [ERROR], status: "405" });
  });

  it("answers /Me, which it does not support, with 501 in the RFC's error shape (RFC 7644 §3.11), with or without a token; /me and /Mean are no endpoint", async () => {
    for (const [method, path, token] of [
      ["GET", "/Me", oktaToken],
      ["PATCH", "/Me", oktaToken],
      ["DELETE", "/Me", undefined],
      ["GET", "/Me/anything", oktaToken],
    ] as const) {
      const response = await fetch(`${api.url}/scim/v2${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect(response.status, `${method} ${path}`).toBe(501);
      expect(response.headers.get("content-type")).toMatch(/^application\/scim\+json/);
      expect(await response.json()).toEqual({ schemas: [ERROR], status: "501", detail: expect.stringContaining("does not support /Me") });
    }
    for (const path of ["/me", "/Mean"]) {
      const response = await fetch(`${api.url}/scim/v2${path}`, { headers: { authorization: `Bearer ${oktaToken}` } });
      expect(response.status, path).toBe(404);
    }
  });

  it("pages with startIndex and count, and describes itself", async () => {
    const call = scimCaller(api.url, oktaToken, "test");
    for (const n of [1, 2, 3, 4, 5]) await call("POST", "/Users", { schemas: [USER], userName: `pager${n}@example.com`, externalId: `pager-${n}` });
    const people = await fx.db.user.count({ where: { kind: "person", OR: [{ scim: null }, { scim: { deletedAt: null } }] } });
    const first = await call("GET", "/Users?startIndex=1&count=2");
    expect(first.body).toMatchObject({ schemas: ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], totalResults: people, startIndex: 1, itemsPerPage: 2 });
    const seen = new Set<string>();
    for (let start = 1; start <= people; start += 2) {
      for (const user of (await call("GET", `/Users?startIndex=${start}&count=2`)).body.Resources) seen.add(user.id);
    }
    expect(seen.size).toBe(people);
    expect((await call("GET", "/Users?startIndex=0&count=-5")).body).toMatchObject({ startIndex: 1, itemsPerPage: 0, Resources: [] });
    expect((await call("GET", `/Users?filter=${encodeURIComponent('externalId eq "pager-3"')}`)).body.Resources).toEqual([
      expect.objectContaining({ userName: "pager3@example.com" }),
    ]);
    expect((await call("GET", `/Users?filter=${encodeURIComponent('userName eq "PAGER4@example.com" and active eq true')}`)).body.totalResults).toBe(1);
    expect((await call("GET", `/Users?filter=${encodeURIComponent('displayName eq "nobody"')}`)).body.totalResults).toBe(0);
    expect((await call("GET", `/Users?filter=${encodeURIComponent('emails.value eq "pager5@example.com"')}`)).body.Resources).toEqual([
      expect.objectContaining({ externalId: "pager-5" }),
    ]);
    const pager1 = (await call("GET", `/Users?filter=${encodeURIComponent('userName eq "pager1@example.com"')}`)).body.Resources[0].id as string;
    const team = (
      await call("POST", "/Groups", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        displayName: "security",
        externalId: "sec-1",
        members: [{ value: pager1 }],
      })
    ).body.id as string;
    expect(
      (await call("GET", `/Groups?filter=${encodeURIComponent(`members[value eq "${pager1}"]`)}`)).body.Resources.map((g: { id: string }) => g.id),
    ).toEqual([team]);
    expect((await call("GET", `/Groups?filter=${encodeURIComponent('externalId eq "sec-1"')}&excludedAttributes=members`)).body.Resources).toEqual([
      expect.not.objectContaining({ members: expect.anything() }),
    ]);
    expect((await call("GET", "/Users?attributes=userName&count=1")).body.Resources[0]).toEqual({
      schemas: [USER],
      id: expect.any(String),
      userName: expect.any(String),
    });

    const config = await call("GET", "/ServiceProviderConfig");
    expect(config.body).toMatchObject({
      patch: { supported: true },
      filter: { supported: true, maxResults: 200 },
      bulk: { supported: false },
      authenticationSchemes: [{ type: "oauthbearertoken" }],
    });
    expect((await call("GET", "/ResourceTypes")).body.Resources.map((r: { id: string }) => r.id)).toEqual(["User", "Group"]);
    expect((await call("GET", "/ResourceTypes/User")).body).toMatchObject({ endpoint: "/Users", schema: USER });
    const schemas = (await call("GET", "/Schemas")).body.Resources.map((s: { id: string }) => s.id);
    expect(schemas).toEqual(expect.arrayContaining([USER, "urn:ietf:params:scim:schemas:core:2.0:Group"]));
    expect((await call("GET", `/Schemas/${USER}`)).body.attributes.map((a: { name: string }) => a.name)).toEqual(
      expect.arrayContaining(["userName", "active", "emails"]),
    );
  });

  it("links a person who signed in before to the directory instead of making a second one", async () => {
    const ivan = await fx.user("ivan@example.com", ["engineering"]);
    const client = okta(api.url, oktaToken);
    expect((await client.findUser("ivan@example.com")).body.Resources).toEqual([expect.objectContaining({ id: ivan.id, userName: "ivan@example.com" })]);
    const linked = await client.createUser({ login: "ivan@example.com", given: "Ivan", family: "Example", oktaId: "00u1ivan" });
    expect(linked.status).toBe(201);
    expect(linked.body.id).toBe(ivan.id);
    expect(await fx.db.auditEvent.count({ where: { action: "scim.user.linked", data: { path: ["userId"], equals: ivan.id } } })).toBe(1);
  });
});

describe("two instances changing one person's groups at once", () => {
  it("keeps every join and every leave sent through either instance: none is lost to the other", async () => {
    const { spawn } = await import("node:child_process");
    const path = await import("node:path");
    const child = spawn(path.join(process.cwd(), "node_modules/.bin/tsx"), ["--conditions=react-server", "tests/helpers/scim-instance.ts"], {
      env: { ...process.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const otherUrl = await new Promise<string>((resolve, reject) => {
        let output = "";
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          const found = output.match(/scim instance at (\S+)/);
          if (found) resolve(found[1]!);
        };
        child.stdout!.on("data", onData);
        child.stderr!.on("data", onData);
        child.on("exit", (code) => reject(new Error(`the second instance exited (${code}): ${output}`)));
      });
      // Entra on one instance, Okta on the other, as when a load balancer spreads one provider's parallel calls.
      const first = entra(api.url, entraToken);
      const second = okta(otherUrl, oktaToken);
      const groupIds: string[] = [];
      for (const name of ["race-red", "race-blue", "race-green", "race-amber"]) {
        const created = await first.createGroup(name, `race-${name}`);
        expect(created.status).toBe(201);
        groupIds.push((created.body as { id: string }).id);
      }
      const people: string[] = [];
      for (let i = 0; i < 8; i++) {
        const made = await second.createUser({ login: `race${i}@example.com`, given: "Race", family: `Person${i}`, oktaId: `00urace${i}` });
        expect(made.status).toBe(201);
        people.push((made.body as { id: string }).id);
      }
      const [red, blue, green, amber] = groupIds as [string, string, string, string];
      // Everyone joins four groups at once, two through each instance.
      const joins = await Promise.all(
        people.flatMap((id) => [first.addMembers(red, [id]), second.addMember(blue, id, "x"), first.addMembers(green, [id]), second.addMember(amber, id, "x")]),
      );
      expect(joins.map((j) => j.status).filter((s) => s !== 204 && s !== 200)).toEqual([]);
      for (const id of people)
        expect((await fx.db.user.findUniqueOrThrow({ where: { id } })).groups.sort()).toEqual(["race-amber", "race-blue", "race-green", "race-red"]);
      // Then each leaves two while the other two stay, again at once through both.
      const leaves = await Promise.all(people.flatMap((id) => [first.removeMembers(red, [id]), second.removeMember(blue, id)]));
      expect(leaves.map((j) => j.status).filter((s) => s !== 204 && s !== 200)).toEqual([]);
      for (const id of people) expect((await fx.db.user.findUniqueOrThrow({ where: { id } })).groups.sort()).toEqual(["race-amber", "race-green"]);
      // Each change is audited once, with its own group.
      const changes = await fx.db.auditEvent.findMany({ where: { action: "user.directory_changed", data: { path: ["userId"], equals: people[0]! } } });
      expect(
        changes
          .map((c) => c.data as { added: string[]; removed: string[] })
          .flatMap((d) => [...d.added.map((g) => `+${g}`), ...d.removed.map((g) => `-${g}`)])
          .sort(),
      ).toEqual(["+race-amber", "+race-blue", "+race-green", "+race-red", "-race-blue", "-race-red"]);
    } finally {
      child.kill("SIGTERM");
    }
  });
});
