import http from "node:http";
import type { AddressInfo } from "node:net";
import type { PrismaClient } from "@prisma/client";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../helpers/database";
import { setTestEnvironment } from "../helpers/environment";

/**
 * Trusted-proxy sign-in against a real JWKS served on 127.0.0.1, with assertions signed
 * the way each proxy signs them. Forgeries must be refused with a reason and no user.
 */
const ISSUER = "https://latchkey-test.cloudflareaccess.com";
const AUDIENCE = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

let proxy: typeof import("@/lib/auth/trusted-proxy");
let envModule: typeof import("@/lib/env");
let db: PrismaClient;
let close: () => Promise<void>;
let jwksUrl: string;
let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
let ec: { privateKey: CryptoKey; publicKey: CryptoKey };
let stranger: { privateKey: CryptoKey; publicKey: CryptoKey };

beforeAll(async () => {
  rsa = await generateKeyPair("RS256", { extractable: true });
  ec = await generateKeyPair("ES256", { extractable: true });
  stranger = await generateKeyPair("RS256", { extractable: true });
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
    { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
  ];
  const server = http.createServer((_, response) => {
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cdn-cgi/access/certs`;

  const database = await createTestDatabase();
  setTestEnvironment(database.url, {
    LATCHKEY_AUTH_MODE: "trusted-proxy",
    LATCHKEY_PROXY_KIND: "cloudflare-access",
    LATCHKEY_PROXY_JWKS_URL: jwksUrl,
    LATCHKEY_PROXY_ISSUER: ISSUER,
    LATCHKEY_PROXY_AUDIENCE: AUDIENCE,
  });
  envModule = await import("@/lib/env");
  proxy = await import("@/lib/auth/trusted-proxy");
  const { db: client, disconnectDb } = await import("@/lib/db");
  db = client as PrismaClient;
  close = async () => {
    await disconnectDb();
    await database.drop();
    await new Promise((resolve) => server.close(resolve));
  };
});
afterAll(() => close?.());

/** Settings as another kind of proxy would have them. */
function settingsFor(overrides: Partial<import("@/lib/env").Env>) {
  return proxy.proxySettings({ ...envModule.env(), ...overrides });
}

const IAP = () =>
  settingsFor({
    LATCHKEY_PROXY_KIND: "google-iap",
    LATCHKEY_PROXY_ISSUER: "https://cloud.google.com/iap",
    LATCHKEY_PROXY_AUDIENCE: "/projects/123456/global/backendServices/789",
  });
const POMERIUM = () =>
  settingsFor({ LATCHKEY_PROXY_KIND: "pomerium", LATCHKEY_PROXY_ISSUER: "latchkey.corp.example", LATCHKEY_PROXY_AUDIENCE: "latchkey.corp.example" });
const OAUTH2_PROXY = () =>
  settingsFor({ LATCHKEY_PROXY_KIND: "oauth2-proxy", LATCHKEY_PROXY_ISSUER: "https://idp.example", LATCHKEY_PROXY_AUDIENCE: "latchkey" });

interface Signing {
  key?: CryptoKey | Uint8Array;
  alg?: string;
  kid?: string;
  issuer?: string;
  audience?: string | string[];
  expires?: number | string;
}

function assertion(
  claims: JWTPayload,
  { key = rsa.privateKey, alg = "RS256", kid = "rsa-1", issuer = ISSUER, audience = [AUDIENCE], expires = "5m" }: Signing = {},
) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg, kid, typ: "JWT" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(expires)
    .sign(key);
}

const cfHeaders = (token: string) => new Headers({ "cf-access-jwt-assertion": token });
const signIns = (email: string) => db.auditEvent.findMany({ where: { action: "auth.signed_in", actorEmail: email } });

describe("a verified assertion signs a person in", () => {
  it("Cloudflare Access (RS256): creates the user with the proxy's groups and roles, and audits one sign-in for two requests", async () => {
    const headers = cfHeaders(await assertion({ email: "alice@example.com", groups: ["engineering"] }));
    const first = await proxy.principalFromProxy(headers);
    const second = await proxy.principalFromProxy(headers);
    expect(first).toEqual({ ok: true, principal: { id: expect.any(String), email: "alice@example.com", groups: ["engineering"], roles: ["requester"] } });
    expect(second).toEqual(first);
    const row = await db.user.findUniqueOrThrow({ where: { email: "alice@example.com" } });
    expect(row).toMatchObject({ kind: "person", name: "alice@example.com", groups: ["engineering"], roles: ["requester"] });
    expect(row.lastSignInAt).not.toBeNull();
    const events = await signIns("alice@example.com");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actorType: "human",
      actorId: row.id,
      data: { via: "trusted-proxy", proxy: "cloudflare-access", groups: ["engineering"], roles: ["requester"] },
    });
  });

  it("Google IAP (ES256, its own header): e-mail lower-cased, groups from a comma-separated claim", async () => {
    const token = await assertion(
      { email: "Bob@Example.com", groups: "engineering-leads, audit" },
      { key: ec.privateKey, alg: "ES256", kid: "ec-1", issuer: "https://cloud.google.com/iap", audience: "/projects/123456/global/backendServices/789" },
    );
    expect(await proxy.verifyProxyAssertion(cfHeaders(token), IAP())).toMatchObject({ ok: false });
    const outcome = await proxy.principalFromProxy(new Headers({ "x-goog-iap-jwt-assertion": token }), IAP());
    expect(outcome).toMatchObject({
      ok: true,
      principal: { email: "bob@example.com", groups: ["audit", "engineering-leads"], roles: ["requester", "approver", "auditor"] },
    });
    expect((await signIns("bob@example.com"))[0]).toMatchObject({ data: { via: "trusted-proxy", proxy: "google-iap" } });
  });

  it("Pomerium (RS256, issuer and audience are the route's host): the name claim names the user", async () => {
    const token = await assertion(
      { email: "dave@example.com", name: "Dave Admin", groups: ["platform-admins"] },
      { issuer: "latchkey.corp.example", audience: "latchkey.corp.example" },
    );
    const outcome = await proxy.principalFromProxy(new Headers({ "x-pomerium-jwt-assertion": token }), POMERIUM());
    expect(outcome).toMatchObject({ ok: true, principal: { email: "dave@example.com", roles: ["requester", "approver", "auditor", "admin"] } });
    expect(await db.user.findUniqueOrThrow({ where: { email: "dave@example.com" } })).toMatchObject({ name: "Dave Admin" });
  });

  it("oauth2-proxy (the IdP's ID token as Authorization: Bearer)", async () => {
    const token = await assertion(
      { email: "erin@example.com", groups: ["oncall"] },
      { key: ec.privateKey, alg: "ES256", kid: "ec-1", issuer: "https://idp.example", audience: "latchkey" },
    );
    const outcome = await proxy.principalFromProxy(new Headers({ authorization: `Bearer ${token}` }), OAUTH2_PROXY());
    expect(outcome).toMatchObject({ ok: true, principal: { email: "erin@example.com", groups: ["oncall"], roles: ["requester"] } });
  });

  it("records a new sign-in when the groups change or the last one is over 8 hours old", async () => {
    const email = "frank@example.com";
    await proxy.principalFromProxy(cfHeaders(await assertion({ email, groups: ["engineering"] })));
    await proxy.principalFromProxy(cfHeaders(await assertion({ email, groups: ["engineering-leads"] })));
    const row = await db.user.findUniqueOrThrow({ where: { email } });
    expect(row).toMatchObject({ groups: ["engineering-leads"], roles: ["requester", "approver"] });
    expect(await signIns(email)).toHaveLength(2);

    await db.user.update({ where: { email }, data: { lastSignInAt: new Date(Date.now() - 9 * 60 * 60 * 1000) } });
    await proxy.principalFromProxy(cfHeaders(await assertion({ email, groups: ["engineering-leads"] })));
    expect(await signIns(email)).toHaveLength(3);
    expect((await db.user.findUniqueOrThrow({ where: { email } })).lastSignInAt!.getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it("several requests of one page at once record one sign-in", async () => {
    const headers = cfHeaders(await assertion({ email: "grace@example.com", groups: ["engineering"] }));
    const outcomes = await Promise.all([1, 2, 3, 4].map(() => proxy.principalFromProxy(headers)));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(await signIns("grace@example.com")).toHaveLength(1);
  });
});

describe("access follows the proxy's groups", () => {
  async function signIn(email: string, groups: string[]) {
    const outcome = await proxy.principalFromProxy(cfHeaders(await assertion({ email, groups })));
    return outcome;
  }
  const reasonOf = async (requestId: string, action: string) =>
    ((await db.auditEvent.findFirstOrThrow({ where: { requestId, action } })).data as { reason?: string }).reason;

  it("a person whose groups changed at the proxy loses at once what the lost group gave: grants revoked, pending requests cancelled, audited why", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { verifyCredential } = await import("@/lib/authz/verify");
    const bob = await signIn("bob.tp@example.com", ["engineering-leads"]);
    const ivan = await signIn("ivan.tp@example.com", ["engineering", "oncall"]);
    if (!bob.ok || !ivan.ok) throw new Error("sign-in refused");
    const input = { role: "read", durationMinutes: 60, justification: "Investigating INC-1234: payment retries failing" };
    const production = await engine.createRequest(ivan.principal, "temporary-access", { ...input, targetId: "payments-api-production" });
    await engine.decide(bob.principal, { requestId: production.id, decision: "approve", comment: "ok" });
    const { token } = await engine.revealCredential(ivan.principal, production.id);
    const pending = await engine.createRequest(ivan.principal, "temporary-access", { ...input, targetId: "payments-api-staging" });
    expect(await verifyCredential(token)).toMatchObject({ ok: true });

    // The proxy now says ivan is only in oncall.
    const after = await signIn("ivan.tp@example.com", ["oncall"]);
    expect(after).toMatchObject({ ok: true, principal: { id: ivan.principal.id, groups: ["oncall"], roles: ["requester"] } });
    const reason = "directory: removed from engineering (at trusted-proxy sign-in)";
    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: production.id } })).toMatchObject({ status: "revoked" });
    expect(await reasonOf(production.id, "grant.revoked")).toBe(reason);
    expect(await verifyCredential(token)).toMatchObject({ ok: false });
    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: pending.id } })).toMatchObject({ status: "cancelled" });
    expect(await reasonOf(pending.id, "request.cancelled")).toBe(reason);
    const changed = await db.auditEvent.findMany({ where: { action: "user.directory_changed", data: { path: ["userId"], equals: ivan.principal.id } } });
    expect(changed).toHaveLength(1);
    expect(changed[0]!.data).toMatchObject({ source: "trusted-proxy", removed: ["engineering"], added: [], groups: ["oncall"], roles: ["requester"], reason });
    expect(await db.user.findUniqueOrThrow({ where: { id: ivan.principal.id } })).toMatchObject({ groups: ["oncall"], roles: ["requester"] });
    // The sign-in with the new groups is recorded once; the same groups again change nothing more.
    expect((await signIns("ivan.tp@example.com")).map((e) => (e.data as { groups: string[] }).groups)).toEqual([["engineering", "oncall"], ["oncall"]]);
    await Promise.all([1, 2, 3].map(() => signIn("ivan.tp@example.com", ["oncall"])));
    expect(await signIns("ivan.tp@example.com")).toHaveLength(2);
    expect(await db.auditEvent.count({ where: { action: "user.directory_changed", data: { path: ["userId"], equals: ivan.principal.id } } })).toBe(1);
  });

  it("an approver demoted at the proxy can no longer approve; one left with no role is refused, and still loses their grants", async () => {
    const engine = await import("@/lib/approvals/engine");
    const judy = await signIn("judy.tp@example.com", ["engineering-leads"]);
    const ken = await signIn("ken.tp@example.com", ["engineering"]);
    const lead = await signIn("lead.tp@example.com", ["engineering-leads"]);
    if (!judy.ok || !ken.ok || !lead.ok) throw new Error("sign-in refused");
    const waiting = await engine.createRequest(ken.principal, "temporary-access", {
      targetId: "payments-api-staging",
      role: "read",
      durationMinutes: 60,
      justification: "Investigating INC-1234: payment retries failing",
    });
    const demoted = await signIn("judy.tp@example.com", ["engineering"]);
    expect(demoted).toMatchObject({ ok: true, principal: { roles: ["requester"] } });
    if (!demoted.ok) return;
    await expect(engine.decide(demoted.principal, { requestId: waiting.id, decision: "approve", comment: "ok" })).rejects.toMatchObject({ code: "forbidden" });

    await engine.decide(lead.principal, { requestId: waiting.id, decision: "approve", comment: "ok" });
    expect((await db.accessRequest.findUniqueOrThrow({ where: { id: waiting.id } })).status).toBe("active");
    const gone = await signIn("ken.tp@example.com", ["contractors"]);
    expect(gone).toMatchObject({ ok: false, reason: expect.stringMatching(/none of your groups gives you a role in Latchkey/) });
    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: waiting.id } })).toMatchObject({ status: "revoked" });
    expect(await reasonOf(waiting.id, "grant.revoked")).toBe("directory: removed from engineering (at trusted-proxy sign-in)");
    expect(await db.user.findUniqueOrThrow({ where: { id: ken.principal.id } })).toMatchObject({ groups: ["contractors"], roles: [] });
  });

  it("a deactivated person is refused, whatever groups the proxy sends", async () => {
    const lee = await signIn("lee.tp@example.com", ["engineering"]);
    if (!lee.ok) throw new Error("sign-in refused");
    await db.user.update({ where: { id: lee.principal.id }, data: { active: false, deactivatedAt: new Date() } });
    expect(await signIn("lee.tp@example.com", ["platform-admins"])).toEqual({
      ok: false,
      reason: "The proxy signed you in as lee.tp@example.com, but your Latchkey account was deactivated. Ask the platform team if this is a mistake.",
    });
    expect(await db.user.findUniqueOrThrow({ where: { id: lee.principal.id } })).toMatchObject({ groups: ["engineering"], active: false });
  });
});

describe("refusals: no principal, no user, and the reason in words", () => {
  async function expectRefused(headers: Headers, reason: string | RegExp, settings = proxy.proxySettings()) {
    const usersBefore = await db.user.count();
    const outcome = await proxy.principalFromProxy(headers, settings);
    expect(outcome.ok).toBe(false);
    expect(outcome).not.toHaveProperty("principal");
    const said = (outcome as { reason: string }).reason;
    if (typeof reason === "string") expect(said).toBe(reason);
    else expect(said).toMatch(reason);
    expect(await db.user.count()).toBe(usersBefore);
    return said;
  }
  const claims = { email: "mallory@example.com", groups: ["platform-admins"] };

  it("no assertion header", async () => {
    await expectRefused(new Headers(), "No cf-access-jwt-assertion header: is Latchkey behind the configured proxy?");
  });

  it("unsigned identity headers alone are ignored, whatever they claim", async () => {
    const forged = new Headers({
      "x-forwarded-email": "mallory@example.com",
      "x-forwarded-user": "mallory",
      "x-forwarded-groups": "platform-admins",
      "x-auth-request-email": "mallory@example.com",
      "x-auth-request-groups": "platform-admins",
      "x-goog-authenticated-user-email": "accounts.google.com:mallory@example.com",
      "x-pomerium-claim-email": "mallory@example.com",
      "remote-user": "mallory",
    });
    await expectRefused(forged, "No cf-access-jwt-assertion header: is Latchkey behind the configured proxy?");
    await expectRefused(forged, "No authorization header: is Latchkey behind the configured proxy?", OAUTH2_PROXY());
    await expectRefused(forged, "No x-goog-iap-jwt-assertion header: is Latchkey behind the configured proxy?", IAP());
  });

  it("wrong issuer", async () => {
    await expectRefused(
      cfHeaders(await assertion(claims, { issuer: "https://attacker.cloudflareaccess.com" })),
      `The proxy's assertion was not issued by ${ISSUER}.`,
    );
  });

  it("wrong audience (an assertion for another application behind the same proxy)", async () => {
    await expectRefused(
      cfHeaders(await assertion(claims, { audience: ["another-app"] })),
      `The proxy's assertion is meant for another application, not ${AUDIENCE}.`,
    );
  });

  it("expired beyond the clock tolerance", async () => {
    await expectRefused(cfHeaders(await assertion(claims, { expires: Math.floor(Date.now() / 1000) - 120 })), "The proxy's assertion has expired.");
  });

  it("no expiry at all", async () => {
    const token = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "rsa-1" }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(rsa.privateKey);
    await expectRefused(cfHeaders(token), "The proxy's assertion has no expiry time.");
  });

  it("signed by a key that is not in the JWKS", async () => {
    await expectRefused(
      cfHeaders(await assertion(claims, { key: stranger.privateKey, kid: "stranger" })),
      `The proxy's assertion is signed with a key that is not published at ${jwksUrl}.`,
    );
    await expectRefused(
      cfHeaders(await assertion(claims, { key: stranger.privateKey, kid: "rsa-1" })),
      `The proxy's assertion has a signature that does not match the keys published at ${jwksUrl}.`,
    );
  });

  it('an unsigned token ("alg": "none"), built by hand', async () => {
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const exp = Math.floor(Date.now() / 1000) + 300;
    for (const header of [{ alg: "none", typ: "JWT" }, { alg: "none", kid: "rsa-1" }, { alg: "NONE" }]) {
      const token = `${part(header)}.${part({ ...claims, iss: ISSUER, aud: AUDIENCE, exp })}.`;
      await expectRefused(cfHeaders(token), "The proxy's assertion is not signed with an algorithm Latchkey accepts (RS256, ES256).");
    }
  });

  it("an HS256 token whose HMAC secret is the proxy's public key (PEM or JWK)", async () => {
    const publicJwk = JSON.stringify({ ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" });
    for (const secret of [await exportSPKI(rsa.publicKey), publicJwk]) {
      const token = await assertion(claims, { key: new TextEncoder().encode(secret), alg: "HS256" });
      await expectRefused(cfHeaders(token), "The proxy's assertion is not signed with an algorithm Latchkey accepts (RS256, ES256).");
    }
  });

  it("a header that does not hold a token", async () => {
    await expectRefused(cfHeaders("mallory@example.com"), "The cf-access-jwt-assertion header does not hold a signed token.");
  });

  it("a verified token without an e-mail address", async () => {
    await expectRefused(
      cfHeaders(await assertion({ sub: "7335d417", groups: ["platform-admins"] })),
      'The proxy\'s assertion carries no e-mail address (claim "email").',
    );
  });

  it("a person none of whose groups gives a role", async () => {
    const reason = await expectRefused(
      cfHeaders(await assertion({ email: "guest@example.com", groups: ["contractors"] })),
      /none of your groups gives you a role in Latchkey/,
    );
    expect(reason).toContain("guest@example.com");
    expect(await db.user.count({ where: { email: "guest@example.com" } })).toBe(0);
  });

  it("a service identity cannot be taken over through the proxy", async () => {
    await db.user.create({ data: { email: "ci@service.latchkey", kind: "service", groups: ["engineering"], roles: ["requester"] } });
    await expectRefused(cfHeaders(await assertion({ email: "ci@service.latchkey", groups: ["platform-admins"] })), /is a service identity/);
    expect(await db.user.findUniqueOrThrow({ where: { email: "ci@service.latchkey" } })).toMatchObject({ kind: "service", roles: ["requester"] });
    expect(await signIns("ci@service.latchkey")).toHaveLength(0);
  });

  it("no refusal reason carries the token", async () => {
    const token = await assertion(claims, { issuer: "https://attacker.example" });
    const outcome = await proxy.verifyProxyAssertion(cfHeaders(token));
    expect(JSON.stringify(outcome)).not.toContain(token.split(".")[1]);
  });
});

describe("configuration", () => {
  it("refuses algorithms that would let anyone forge an assertion, naming the variable", () => {
    for (const algorithms of ["HS256", "none", "RS256,none", "RS256, HS512", " , "]) {
      expect(() => settingsFor({ LATCHKEY_PROXY_ALGORITHMS: algorithms }), algorithms).toThrow(envModule.ConfigError);
      expect(() => settingsFor({ LATCHKEY_PROXY_ALGORITHMS: algorithms }), algorithms).toThrow(/LATCHKEY_PROXY_ALGORITHMS: .*(not allowed|is empty)/);
    }
    expect(settingsFor({ LATCHKEY_PROXY_ALGORITHMS: "ES256, RS256" }).algorithms).toEqual(["ES256", "RS256"]);
  });

  it("knows each proxy's header; a custom proxy must name its own", () => {
    expect(settingsFor({ LATCHKEY_PROXY_KIND: "google-iap" }).header).toBe("x-goog-iap-jwt-assertion");
    expect(settingsFor({ LATCHKEY_PROXY_KIND: "cloudflare-access" }).header).toBe("cf-access-jwt-assertion");
    expect(settingsFor({ LATCHKEY_PROXY_KIND: "pomerium" }).header).toBe("x-pomerium-jwt-assertion");
    expect(settingsFor({ LATCHKEY_PROXY_KIND: "oauth2-proxy" }).header).toBe("authorization");
    expect(settingsFor({ LATCHKEY_PROXY_KIND: "pomerium", LATCHKEY_PROXY_HEADER: "X-Assertion" }).header).toBe("x-assertion");
    expect(() => settingsFor({ LATCHKEY_PROXY_KIND: "custom", LATCHKEY_PROXY_HEADER: undefined })).toThrow(/LATCHKEY_PROXY_HEADER: is not set/);
    expect(settingsFor({ LATCHKEY_PROXY_KIND: "custom", LATCHKEY_PROXY_HEADER: "X-Identity-Assertion" }).header).toBe("x-identity-assertion");
  });
});
