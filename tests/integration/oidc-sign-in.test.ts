import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { signInThroughIdp } from "../helpers/oidc-sign-in";
import { startLocalIdp, type RunningIdp } from "../../scripts/support/local-idp";
import { freePort } from "../../scripts/support/ports";

/**
 * Sign-in through next-auth's real handler against the real local OpenID Provider: roles
 * follow the provider's answer at every sign-in, for returning people too.
 */
const PORTAL = "http://localhost:3999";
let fx: Awaited<ReturnType<typeof engineFixture>>;
let idp: RunningIdp;

beforeAll(async () => {
  idp = await startLocalIdp({
    port: await freePort(),
    clientId: "latchkey-test",
    clientSecret: "test-secret",
    redirectUris: [`${PORTAL}/api/auth/callback/oidc`],
  });
  fx = await engineFixture({ OIDC_ISSUER: idp.issuer, OIDC_GROUPS_SOURCE: "auto", OIDC_REQUIRE_EMAIL_VERIFIED: "true" });
});
afterAll(async () => {
  await fx?.close();
  await idp?.close();
});

async function signIn(email: string) {
  const { authOptions } = await import("@/lib/auth/options");
  return signInThroughIdp(authOptions(), PORTAL, email);
}

async function sessionRoles(sessionToken: string) {
  const { authOptions } = await import("@/lib/auth/options");
  const found = await authOptions().adapter!.getSessionAndUser!(sessionToken);
  return (found?.user as { roles?: string[] } | undefined)?.roles;
}

const lastEvent = (action: string, email: string) => fx.db.auditEvent.findFirstOrThrow({ where: { action, actorEmail: email }, orderBy: { id: "desc" } });

describe("sign-in through the identity provider", () => {
  it("a returning person demoted at the provider loses the approver role, its tokens and what the lost group gave, at the second sign-in", async () => {
    idp.directory.setUser("erin@example.com", { name: "Erin Lead", groups: ["engineering-leads"] });
    const first = await signIn("erin@example.com");
    expect(first.redirect).toBe(`${PORTAL}/`);
    expect(first.sessionToken).toBeTruthy();
    expect(await sessionRoles(first.sessionToken!)).toEqual(["requester", "approver"]);
    const erin = await fx.db.user.findUniqueOrThrow({ where: { email: "erin@example.com" } });
    expect(erin).toMatchObject({ groups: ["engineering-leads"], roles: ["requester", "approver"] });
    expect((await lastEvent("auth.signed_in", "erin@example.com")).data).toMatchObject({
      groups: ["engineering-leads"],
      roles: ["requester", "approver"],
      groupsFrom: "id_token",
    });

    const tokens = await import("@/lib/identity/tokens");
    const engine = await import("@/lib/approvals/engine");
    const principal = { id: erin.id, email: erin.email, groups: erin.groups, roles: erin.roles as never };
    const approving = await tokens.createPersonalToken(principal, { name: "approver bot", scopes: ["approvals:write"], expiresInDays: 7 });
    const staging = await engine.createRequest(principal, "temporary-access", validInput({ targetId: "payments-api-staging" }));

    idp.directory.setUser("erin@example.com", { groups: ["engineering"] });
    const second = await signIn("erin@example.com");
    expect(second.redirect).toBe(`${PORTAL}/`);
    expect(await fx.db.user.findUniqueOrThrow({ where: { id: erin.id } })).toMatchObject({ groups: ["engineering"], roles: ["requester"] });
    // Both sessions read the new roles: the one from before the change too.
    expect(await sessionRoles(second.sessionToken!)).toEqual(["requester"]);
    expect(await sessionRoles(first.sessionToken!)).toEqual(["requester"]);
    expect(await tokens.authenticateToken(approving.secret)).toEqual({ ok: false, reason: "This API token was revoked." });
    // engineering still may request staging: that request stays.
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: staging.id } })).status).toBe("pending");
    // The audit records what the provider said this time, not the stored groups.
    expect((await lastEvent("auth.signed_in", "erin@example.com")).data).toMatchObject({ groups: ["engineering"], roles: ["requester"] });
    const changed = await fx.db.auditEvent.findFirstOrThrow({
      where: { action: "user.directory_changed", data: { path: ["email"], equals: "erin@example.com" } },
    });
    expect(changed.data).toMatchObject({
      source: "sign-in",
      removed: ["engineering-leads"],
      added: ["engineering"],
      reason: "directory: removed from engineering-leads (at sign-in)",
    });

    // A third sign-in with the groups unchanged changes nothing more.
    const third = await signIn("erin@example.com");
    expect(third.redirect).toBe(`${PORTAL}/`);
    expect(await fx.db.auditEvent.count({ where: { action: "user.directory_changed", data: { path: ["email"], equals: "erin@example.com" } } })).toBe(1);
  });

  it("a returning person whose groups now give no role is refused, and loses what they held", async () => {
    idp.directory.setUser("gus@example.com", { groups: ["engineering"] });
    expect((await signIn("gus@example.com")).redirect).toBe(`${PORTAL}/`);
    const gus = await fx.db.user.findUniqueOrThrow({ where: { email: "gus@example.com" } });
    const engine = await import("@/lib/approvals/engine");
    const pending = await engine.createRequest(
      { id: gus.id, email: gus.email, groups: gus.groups, roles: gus.roles as never },
      "temporary-access",
      validInput(),
    );
    idp.directory.setUser("gus@example.com", { groups: ["contractors"] });
    const refused = await signIn("gus@example.com");
    expect(refused.redirect).toBe("/signin?error=NoRole");
    expect(refused.sessionToken).toBeUndefined();
    expect(await fx.db.user.findUniqueOrThrow({ where: { id: gus.id } })).toMatchObject({ groups: ["contractors"], roles: [] });
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: pending.id } })).status).toBe("cancelled");
  });

  it("reads groups from userinfo when the ID token carries none", async () => {
    idp.directory.setUser("hana@example.com", { groups: ["engineering-leads"] });
    idp.directory.setClaimsOnlyAtUserinfo(true);
    try {
      const result = await signIn("hana@example.com");
      expect(result.redirect).toBe(`${PORTAL}/`);
      expect(await fx.db.user.findUniqueOrThrow({ where: { email: "hana@example.com" } })).toMatchObject({
        groups: ["engineering-leads"],
        roles: ["requester", "approver"],
      });
      expect((await lastEvent("auth.signed_in", "hana@example.com")).data).toMatchObject({ groupsFrom: "userinfo", groups: ["engineering-leads"] });
      // Returning, demoted, still only at userinfo.
      idp.directory.setUser("hana@example.com", { groups: ["engineering"] });
      expect((await signIn("hana@example.com")).redirect).toBe(`${PORTAL}/`);
      expect(await fx.db.user.findUniqueOrThrow({ where: { email: "hana@example.com" } })).toMatchObject({ groups: ["engineering"], roles: ["requester"] });
    } finally {
      idp.directory.setClaimsOnlyAtUserinfo(false);
    }
  });

  it("splits a groups claim sent as one string on commas only, keeping names with spaces whole", async () => {
    idp.directory.setUser("ivy@example.com", { groups: "engineering, Platform Admins" });
    expect((await signIn("ivy@example.com")).redirect).toBe(`${PORTAL}/`);
    expect((await fx.db.user.findUniqueOrThrow({ where: { email: "ivy@example.com" } })).groups).toEqual(["Platform Admins", "engineering"]);
  });

  it("refuses an answer without an e-mail, or with an unverified one, and says why", async () => {
    idp.directory.setUser("jo@example.com", { groups: ["engineering"], emailVerified: false });
    const unverified = await signIn("jo@example.com");
    expect(unverified.redirect).toBe("/signin?error=EmailNotVerified");
    expect(unverified.sessionToken).toBeUndefined();
    expect(await fx.db.user.count({ where: { email: "jo@example.com" } })).toBe(0);
    expect((await lastEvent("auth.sign_in_refused", "jo@example.com")).data).toMatchObject({ reason: "EmailNotVerified" });
    // The provider does not say: refused while the setting requires it.
    idp.directory.setUser("jo@example.com", { emailVerified: null });
    expect((await signIn("jo@example.com")).redirect).toBe("/signin?error=EmailNotVerified");
    idp.directory.setUser("kim@example.com", { groups: ["engineering"], omit: ["email"] });
    expect((await signIn("kim@example.com")).redirect).toBe("/signin?error=NoEmail");
    // Once verified, the same person signs in.
    idp.directory.setUser("jo@example.com", { emailVerified: true });
    expect((await signIn("jo@example.com")).redirect).toBe(`${PORTAL}/`);
  });

  it("refuses a deactivated person at sign-in", async () => {
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    idp.directory.setUser("lou@example.com", { groups: ["engineering"] });
    expect((await signIn("lou@example.com")).redirect).toBe(`${PORTAL}/`);
    const lou = await fx.db.user.findUniqueOrThrow({ where: { email: "lou@example.com" } });
    expect(await applyDirectoryChange({ userId: lou.id, active: false, source: "scim" })).toMatchObject({ endedSessions: 1 });
    const refused = await signIn("lou@example.com");
    expect(refused).toMatchObject({ redirect: "/signin?error=Deactivated", sessionToken: undefined });
    expect(await fx.db.session.count({ where: { userId: lou.id } })).toBe(0);
  });
});
