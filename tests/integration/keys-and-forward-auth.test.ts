import { generateKeyPair, SignJWT, decodeProtectedHeader, decodeJwt, exportSPKI, importJWK, type JWK } from "jose";
import { createHmac, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";
import type { Principal } from "@/lib/policy/evaluate";

const PROXY_SECRET = randomBytes(24).toString("base64url");

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let engine: typeof import("@/lib/approvals/engine");
let keys: typeof import("@/lib/credentials/keys");
let alice: Principal;
let bob: Principal;
let introspector: string;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_FORWARD_AUTH_PROXIES: `edge-nginx=${PROXY_SECRET}` });
  engine = await import("@/lib/approvals/engine");
  keys = await import("@/lib/credentials/keys");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  const dave = await fx.user("dave@example.com", ["platform-admins"]);
  const services = await import("@/lib/identity/service-identities");
  const tokens = await import("@/lib/identity/tokens");
  const gateway = await services.createServiceIdentity(dave, {
    name: "payments-gateway",
    description: "Resource server for payments-api",
    groups: ["engineering"],
    requestOnly: true,
  });
  introspector = (await tokens.createServiceToken(dave, gateway.service!.id, { name: "introspection", scopes: ["introspect"], expiresInDays: 30 })).secret;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

/** An approved grant for alice and its credential, revealed. */
async function grant(overrides: Record<string, unknown> = {}): Promise<{ requestId: string; token: string }> {
  const request = await engine.createRequest(alice, "temporary-access", validInput(overrides));
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
  const { token } = await engine.revealCredential(alice, request.id);
  return { requestId: request.id, token };
}

async function introspect(token: string) {
  const response = await fetch(`${api.url}/api/oauth/introspect`, {
    method: "POST",
    headers: { authorization: `Bearer ${introspector}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

async function forward(host: string, uri: string, auth: { token?: string; cookie?: string; secret?: string | null } = {}) {
  const headers: Record<string, string> = { "x-forwarded-host": host, "x-forwarded-uri": uri, "x-forwarded-method": "GET" };
  if (auth.secret !== null) headers["x-latchkey-proxy-secret"] = auth.secret ?? PROXY_SECRET;
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  if (auth.cookie) headers.cookie = auth.cookie;
  const response = await fetch(`${api.url}/api/forward-auth`, { headers });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("signing key rotation", () => {
  it("keeps verifying tokens of a retired key until they expire, then drops the key from JWKS", async () => {
    const before = await grant({ durationMinutes: 60 });
    const oldKid = decodeProtectedHeader(before.token).kid!;
    const { kid: newKid, retired } = await keys.rotateSigningKey({ type: "human", id: bob.id, email: bob.email }, "test rotation");
    expect(retired).toEqual([oldKid]);
    const after = await grant({ durationMinutes: 120 });
    expect(decodeProtectedHeader(after.token).kid).toBe(newKid);

    const published = (await keys.publicJwks()).keys.map((k) => k.kid);
    expect(published).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect(await introspect(before.token)).toMatchObject({ active: true, jti: decodeJwt(before.token).jti, username: "alice@example.com" });
    expect(await introspect(after.token)).toMatchObject({ active: true });

    // Ninety minutes on, the old key's last token has expired: the key leaves JWKS and its tokens are refused.
    const later = new Date(Date.now() + 90 * 60_000);
    expect((await keys.publicJwks(later)).keys.map((k) => k.kid)).toEqual([newKid]);
    const { verifyCredential } = await import("@/lib/authz/verify");
    expect(await verifyCredential(before.token, later)).toMatchObject({ ok: false, reason: expect.stringMatching(/does not publish/) });
    expect(await verifyCredential(after.token, later)).toMatchObject({ ok: true });

    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "key.rotated" } });
    expect(event).toMatchObject({ actorEmail: "bob@example.com", data: { kid: newKid, retired: [oldKid], reason: "test rotation" } });
  });

  it("rotates on schedule: the next key is published a day ahead (LATCHKEY_KEY_PUBLISH_AHEAD) and signs only from then on", async () => {
    const active = await fx.db.signingKey.findFirstOrThrow({ where: { status: "active" } });
    const since = (active.activatesAt ?? active.createdAt).getTime();
    const day = 86_400_000;
    expect(await keys.rotateSigningKeyIfDue(new Date(since + 28 * day))).toBeNull();
    const published = await keys.rotateSigningKeyIfDue(new Date(since + 29.5 * day));
    expect(published).toMatchObject({ step: "published", activatesAt: new Date(since + 30.5 * day) });
    const nextKid = published!.kid;
    // Published, not signing: JWKS has it, credentials are still signed by the active key.
    expect(await fx.db.signingKey.findUniqueOrThrow({ where: { kid: nextKid } })).toMatchObject({ status: "next" });
    expect((await keys.publicJwks()).keys.map((k) => k.kid)).toEqual(expect.arrayContaining([active.kid, nextKid]));
    expect(decodeProtectedHeader((await grant()).token).kid).toBe(active.kid);
    expect(await keys.rotateSigningKeyIfDue(new Date(since + 30 * day))).toBeNull();

    const activated = await keys.rotateSigningKeyIfDue(new Date(since + 30.5 * day));
    expect(activated).toEqual({ step: "activated", kid: nextKid, retired: [active.kid] });
    expect(await fx.db.signingKey.findFirstOrThrow({ where: { status: "active" } })).toMatchObject({ kid: nextKid });
    expect(await fx.db.signingKey.findUniqueOrThrow({ where: { kid: active.kid } })).toMatchObject({ status: "retired" });
    expect(decodeProtectedHeader((await grant()).token).kid).toBe(nextKid);
    const events = await fx.db.auditEvent.findMany({
      where: { action: { in: ["key.published", "key.rotated"] }, actorType: "system" },
      orderBy: { id: "asc" },
    });
    expect(events.map((e) => [e.action, e.data])).toEqual([
      ["key.published", { kid: nextKid, activatesAt: new Date(since + 30.5 * day).toISOString(), reason: expect.stringMatching(/reaches 30 days of age/) }],
      ["key.rotated", { kid: nextKid, retired: [active.kid], prepublished: true, reason: expect.stringMatching(/^scheduled: published/) }],
    ]);
    // Its age counts from when it started signing: not due again 29 days after its publication.
    expect(await keys.rotateSigningKeyIfDue(new Date(since + 29.5 * day + 29 * day))).toBeNull();
  });

  it("rotating now makes the published next key active, so verifiers that loaded it keep working", async () => {
    const active = await fx.db.signingKey.findFirstOrThrow({ where: { status: "active" } });
    const next = await keys.publishNextSigningKey({ type: "human", id: bob.id, email: bob.email }, "staged by hand");
    expect(next).toMatchObject({ activatesAt: expect.any(Date) });
    // Publishing again while one waits is the same key.
    expect((await keys.publishNextSigningKey({ type: "human", id: bob.id, email: bob.email }, "again")).kid).toBe(next.kid);
    const rotated = await keys.rotateSigningKey({ type: "human", id: bob.id, email: bob.email }, "suspected leak");
    expect(rotated).toEqual({ kid: next.kid, retired: [active.kid], prepublished: true });
    const again = await keys.rotateSigningKey({ type: "human", id: bob.id, email: bob.email }, "and again");
    expect(again).toEqual({ kid: expect.not.stringMatching(next.kid), retired: [next.kid], prepublished: false });
    expect(await fx.db.signingKey.findMany({ where: { status: "active" }, select: { kid: true } })).toEqual([{ kid: again.kid }]);
  });

  it("serves JWKS over HTTP with only public halves", async () => {
    const body = (await (await fetch(`${api.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    expect(body.keys.length).toBeGreaterThanOrEqual(2);
    for (const key of body.keys) {
      expect(key).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig" });
      expect(key.d).toBeUndefined();
    }
  });
});

describe("revocation reaches introspection and forward-auth at once", () => {
  it("answers active, then inactive the moment the grant is revoked", async () => {
    const { requestId, token } = await grant();
    expect(await introspect(token)).toMatchObject({ active: true, target: "payments-api-staging", role: "read", request_id: requestId, token_type: "Bearer" });
    const allowed = await forward("payments.staging.test", "/v1/payments?limit=5", { token });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("x-latchkey-user")).toBe("alice@example.com");
    expect(allowed.headers.get("x-latchkey-groups")).toBe("engineering");
    expect(allowed.headers.get("x-latchkey-grant")).toBe(requestId);
    expect(allowed.headers.get("x-latchkey-role")).toBe("read");

    await engine.revokeGrant(alice, { requestId, reason: "done early" });
    expect(await introspect(token)).toEqual({ active: false });
    const refused = await forward("payments.staging.test", "/v1/payments", { token });
    expect(refused.status).toBe(401);
    expect(refused.text).toMatch(/revoked/);
  });

  it("introspection itself needs a token with the introspect scope and a form body", async () => {
    const { token } = await grant();
    const anonymous = await fetch(`${api.url}/api/oauth/introspect`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `token=${token}`,
    });
    expect(anonymous.status).toBe(401);
    const tokens = await import("@/lib/identity/tokens");
    const personal = (await tokens.createPersonalToken(alice, { name: "cli", scopes: ["requests:read"], expiresInDays: 7 })).secret;
    const wrongScope = await fetch(`${api.url}/api/oauth/introspect`, {
      method: "POST",
      headers: { authorization: `Bearer ${personal}`, "content-type": "application/x-www-form-urlencoded" },
      body: `token=${token}`,
    });
    expect(wrongScope.status).toBe(403);
    const json = await fetch(`${api.url}/api/oauth/introspect`, {
      method: "POST",
      headers: { authorization: `Bearer ${introspector}`, "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });
    expect(json.status).toBe(415);
    expect(await introspect("not-a-token")).toEqual({ active: false });
  });
});

describe("forward-auth", () => {
  it("answers only configured proxies", async () => {
    const { token } = await grant();
    expect((await forward("payments.staging.test", "/", { token, secret: null })).status).toBe(403);
    expect((await forward("payments.staging.test", "/", { token, secret: "not-the-secret-at-all" })).status).toBe(403);
  });

  it("refuses with 401 when there is no valid identity, naming why", async () => {
    const { token } = await grant();
    const none = await forward("payments.staging.test", "/");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/Bearer/);

    const [header, payload, signature] = token.split(".") as [string, string, string];
    const claims = decodeJwt(token);
    const kid = decodeProtectedHeader(token).kid!;
    const cases: Record<string, string> = {
      "alg none": `${b64({ alg: "none", typ: "JWT", kid })}.${payload}.`,
      "tampered claims": `${header}.${b64({ ...claims, role: "write" })}.${signature}`,
      "unknown kid": `${b64({ alg: "RS256", typ: "JWT", kid: "no-such-key" })}.${payload}.${signature}`,
    };
    // HS256 with the public key as the HMAC secret (the classic algorithm confusion).
    const jwk = (await keys.publicJwks()).keys.find((k) => k.kid === kid)!;
    const pem = await exportSPKI((await importJWK(jwk, "RS256", { extractable: true })) as CryptoKey);
    const hsHead = `${b64({ alg: "HS256", typ: "JWT", kid })}.${payload}`;
    cases["HS256 signed with the public key"] = `${hsHead}.${createHmac("sha256", pem).update(hsHead).digest("base64url")}`;
    // Another key, claiming Latchkey's kid.
    const other = await generateKeyPair("RS256");
    cases["signed by another key"] = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid }).sign(other.privateKey);
    for (const [name, forged] of Object.entries(cases)) {
      const answer = await forward("payments.staging.test", "/", { token: forged });
      expect(answer.status, name).toBe(401);
    }
  });

  it("refuses a token signed with Latchkey's own key but for another issuer or audience", async () => {
    const { token } = await grant();
    const claims = decodeJwt(token);
    const { db } = await import("@/lib/db");
    const key = await db.$transaction((tx) => keys.activeSigningKey(tx));
    const resign = (changes: Record<string, unknown>) =>
      new SignJWT({ ...claims, ...changes }).setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" }).sign(key.privateKey);
    expect((await forward("payments.staging.test", "/", { token: await resign({}) })).status).toBe(200);
    const issuer = await forward("payments.staging.test", "/", { token: await resign({ iss: "https://evil.example.com" }) });
    expect(issuer.status).toBe(401);
    expect(issuer.text).toMatch(/iss/);
    const audience = await forward("scratch.test", "/reports", { token: await resign({ aud: "scratch", target: "scratch" }) });
    expect(audience.status).toBe(401);
    expect(audience.text).toMatch(/audience/);
  });

  it("refuses an expired credential", async () => {
    const { requestId, token } = await grant({ durationMinutes: 15 });
    await fx.db.accessRequest.update({ where: { id: requestId }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await engine.expireGrant(requestId)).toBe("expired");
    const answer = await forward("payments.staging.test", "/", { token });
    expect(answer.status).toBe(401);
  });

  it("refuses with 403 an identity whose grant does not cover the host or the path", async () => {
    const { token } = await grant();
    expect((await forward("admin.internal.test", "/", { token })).status).toBe(403);
    const scratch = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "scratch", durationMinutes: 5 }));
    await engine.decide(bob, { requestId: scratch.id, decision: "approve", comment: "ok" });
    const { token: scratchToken } = await engine.revealCredential(alice, scratch.id);
    expect((await forward("scratch.test", "/reports", { token: scratchToken })).status).toBe(200);
    expect((await forward("scratch.test", "/reports/daily?x=1", { token: scratchToken })).status).toBe(200);
    expect((await forward("scratch.test:8443", "/reports/daily", { token: scratchToken })).status).toBe(200);
    for (const uri of [
      "/admin",
      "/reportsx",
      "/reports/../admin",
      "/reports/%2e%2e/admin",
      "//reports/../admin",
      "/\\admin/reports",
      "/reports/..%2fadmin",
      "/reports%2F..%2Fadmin",
      "/reports/..;/admin",
      "/reports;x=1/daily",
      "reports",
    ]) {
      expect((await forward("scratch.test", uri, { token: scratchToken })).status, uri).toBe(403);
    }
    expect((await forward("payments.staging.test", "/", { token: scratchToken })).status).toBe(403);
  });

  it("accepts a portal session when its person holds an active grant for the host", async () => {
    const { requestId } = await grant();
    const sessionToken = randomBytes(16).toString("hex");
    await fx.db.session.create({ data: { sessionToken, userId: alice.id, expires: new Date(Date.now() + 3600_000) } });
    const ok = await forward("payments.staging.test", "/", { cookie: `other=1; next-auth.session-token=${sessionToken}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-latchkey-user")).toBe("alice@example.com");
    const active = await fx.db.accessRequest.findMany({
      where: { requesterId: alice.id, status: "active", targetId: "payments-api-staging" },
      select: { id: true },
    });
    expect(active.map((r) => r.id)).toContain(requestId);
    expect(active.map((r) => r.id)).toContain(ok.headers.get("x-latchkey-grant"));

    const bobSession = randomBytes(16).toString("hex");
    await fx.db.session.create({ data: { sessionToken: bobSession, userId: bob.id, expires: new Date(Date.now() + 3600_000) } });
    const noGrant = await forward("payments.staging.test", "/", { cookie: `next-auth.session-token=${bobSession}` });
    expect(noGrant.status).toBe(403);
    expect(noGrant.text).toMatch(/bob@example.com has no active grant/);
    expect((await forward("payments.staging.test", "/", { cookie: "next-auth.session-token=ended" })).status).toBe(401);
    expect((await forward("payments.staging.test", "/", { cookie: "next-auth.session-token=%E0%A4%A" })).status).toBe(401);
  });
});

describe("the lean authorization listener", () => {
  it("answers forward-auth and introspection exactly as the portal's routes do, and nothing else", async () => {
    const { startAuthzListener } = await import("@/lib/authz/listener");
    const lean = await startAuthzListener(0, "127.0.0.1");
    try {
      const { requestId, token } = await grant();
      const headers = {
        "x-forwarded-host": "payments.staging.test",
        "x-forwarded-uri": "/",
        "x-latchkey-proxy-secret": PROXY_SECRET,
        authorization: `Bearer ${token}`,
      };
      const allowed = await fetch(`${lean.url}/api/forward-auth`, { headers });
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get("x-latchkey-grant")).toBe(requestId);
      const introspected = await fetch(`${lean.url}/api/oauth/introspect`, {
        method: "POST",
        headers: { authorization: `Bearer ${introspector}`, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token }),
      });
      expect(await introspected.json()).toMatchObject({ active: true, request_id: requestId });
      await engine.revokeGrant(alice, { requestId, reason: "done" });
      expect((await fetch(`${lean.url}/api/forward-auth`, { headers })).status).toBe(401);
      expect((await fetch(`${lean.url}/api/forward-auth`, { headers: { ...headers, "x-latchkey-proxy-secret": "wrong-secret-wrong-secret" } })).status).toBe(
        403,
      );
      expect((await fetch(`${lean.url}/api/v1/me`, { headers })).status).toBe(404);
      expect((await fetch(`${lean.url}/api/oauth/introspect`)).status).toBe(405);
    } finally {
      await lean.close();
    }
  });
});

describe("verification pins the algorithm", () => {
  it("refuses an ES256 token even from a key published under the same kid", async () => {
    const { token } = await grant();
    const es = await generateKeyPair("ES256");
    const forged = await new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: "ES256", kid: decodeProtectedHeader(token).kid }).sign(es.privateKey);
    const { verifyCredential } = await import("@/lib/authz/verify");
    expect(await verifyCredential(forged)).toMatchObject({ ok: false, reason: expect.stringMatching(/RS256/) });
  });
});
