import { describe, expect, it } from "vitest";
import { groupsFromClaims } from "@/lib/auth/groups";
import { entitlementRefusal, groupDelta } from "@/lib/identity/entitlements";
import { mergeClaims, needsUserinfo, readSignInAnswer, type ClaimSettings } from "@/lib/identity/sign-in-claims";
import { parseEnv } from "@/lib/env";
import { loadPolicyFile } from "@/lib/policy/load";
import path from "node:path";

const settings = (over: Partial<ClaimSettings> = {}): ClaimSettings => ({ groupsClaim: "groups", groupsSource: "auto", requireEmailVerified: true, ...over });

describe("a groups claim sent as one string", () => {
  it("is split on commas only, so a group name with a space stays whole", () => {
    expect(groupsFromClaims({ groups: "engineering, Platform Admins" }, "groups")).toEqual(["Platform Admins", "engineering"]);
    expect(groupsFromClaims({ groups: "Platform Admins" }, "groups")).toEqual(["Platform Admins"]);
    expect(groupsFromClaims({ groups: " engineering ,, " }, "groups")).toEqual(["engineering"]);
  });
});

describe("where the groups come from", () => {
  const id = { sub: "s1", email: "a@example.com", email_verified: true };
  const info = { sub: "s1", email: "other@example.com", groups: ["from-userinfo"] };
  it("auto asks userinfo only when the ID token lacks the groups or the e-mail", () => {
    expect(needsUserinfo({ ...id, groups: [] }, settings())).toBe(false);
    expect(needsUserinfo(id, settings())).toBe(true);
    expect(needsUserinfo({ sub: "s1", groups: ["x"] }, settings())).toBe(true);
    expect(needsUserinfo({ ...id, realm_access: { roles: ["x"] } }, settings({ groupsClaim: "realm_access.roles" }))).toBe(false);
  });
  it("id_token never asks; userinfo always does, and its groups win", () => {
    expect(needsUserinfo(id, settings({ groupsSource: "id_token" }))).toBe(false);
    expect(needsUserinfo({ ...id, groups: ["x"] }, settings({ groupsSource: "userinfo" }))).toBe(true);
    expect(mergeClaims({ ...id, groups: ["from-id"] }, info, settings({ groupsSource: "userinfo" }))).toEqual({
      claims: { ...id, groups: ["from-userinfo"] },
      groupsFrom: "userinfo",
    });
    // userinfo configured but silent about groups: no groups, not the ID token's.
    expect(mergeClaims({ ...id, groups: ["from-id"] }, { sub: "s1" }, settings({ groupsSource: "userinfo" })).claims.groups).toBeUndefined();
  });
  it("the ID token's identity claims win over userinfo's; userinfo fills what is missing", () => {
    const merged = mergeClaims(id, info, settings());
    expect(merged).toEqual({ claims: { ...id, groups: ["from-userinfo"] }, groupsFrom: "userinfo" });
    expect(mergeClaims({ sub: "s1", groups: ["g"] }, { sub: "s1", email: "b@example.com", email_verified: true }, settings()).claims).toEqual({
      sub: "s1",
      email: "b@example.com",
      email_verified: true,
      groups: ["g"],
    });
    expect(
      mergeClaims({ ...id, realm_access: { roles: ["r"] } }, { realm_access: { roles: ["u"] } }, settings({ groupsClaim: "realm_access.roles" })),
    ).toMatchObject({ groupsFrom: "id_token", claims: { realm_access: { roles: ["r"] } } });
  });
});

describe("what a sign-in needs", () => {
  it("an e-mail", () => {
    expect(readSignInAnswer({ sub: "s" }, settings())).toEqual({ ok: false, error: "NoEmail" });
    expect(readSignInAnswer({ email: "not-an-address", email_verified: true }, settings())).toEqual({ ok: false, error: "NoEmail" });
  });
  it("a verified e-mail: false is always refused; a missing flag only while the setting requires it", () => {
    expect(readSignInAnswer({ email: "A@Example.com", email_verified: false }, settings({ requireEmailVerified: false }))).toMatchObject({
      ok: false,
      error: "EmailNotVerified",
      email: "a@example.com",
    });
    expect(readSignInAnswer({ email: "a@example.com", email_verified: "false" }, settings({ requireEmailVerified: false }))).toMatchObject({ ok: false });
    expect(readSignInAnswer({ email: "a@example.com" }, settings())).toMatchObject({ ok: false, error: "EmailNotVerified" });
    expect(readSignInAnswer({ email: "a@example.com", groups: "x, y z" }, settings({ requireEmailVerified: false }))).toEqual({
      ok: true,
      email: "a@example.com",
      name: "a@example.com",
      groups: ["x", "y z"],
    });
    expect(readSignInAnswer({ email: "a@example.com", email_verified: "true", name: "A" }, settings())).toMatchObject({ ok: true, name: "A" });
  });
  it("the settings are validated, naming the variable", () => {
    const good = {
      DATABASE_URL: "postgresql://x@localhost/db",
      NEXTAUTH_SECRET: "s".repeat(32),
      OIDC_ISSUER: "https://idp.example.com",
      OIDC_CLIENT_ID: "c",
      OIDC_CLIENT_SECRET: "s",
      LATCHKEY_ENCRYPTION_KEY: Buffer.alloc(32).toString("base64"),
    };
    expect(parseEnv(good)).toMatchObject({ OIDC_GROUPS_SOURCE: "auto", OIDC_REQUIRE_EMAIL_VERIFIED: true });
    expect(parseEnv({ ...good, OIDC_GROUPS_SOURCE: "userinfo", OIDC_REQUIRE_EMAIL_VERIFIED: "false" })).toMatchObject({
      OIDC_GROUPS_SOURCE: "userinfo",
      OIDC_REQUIRE_EMAIL_VERIFIED: false,
    });
    expect(() => parseEnv({ ...good, OIDC_GROUPS_SOURCE: "access_token" })).toThrowError(/OIDC_GROUPS_SOURCE: must be "id_token", "userinfo" or "auto"/);
    expect(() => parseEnv({ ...good, OIDC_REQUIRE_EMAIL_VERIFIED: "no" })).toThrowError(/OIDC_REQUIRE_EMAIL_VERIFIED: must be "true" or "false"/);
  });
});

describe("what the policy still gives after a directory change", () => {
  const policy = loadPolicyFile(path.join(process.cwd(), "tests/fixtures/policy.yaml"));
  const holder = (groups: string[], active = true) => ({ id: "u", email: "u@example.com", groups, active });
  const grant = (targetId: string, extra: Partial<{ breakGlass: boolean; role: string }> = {}) => ({
    workflowId: "temporary-access",
    targetId,
    input: { role: extra.role ?? "read" },
    breakGlass: extra.breakGlass ?? false,
  });
  it("keeps what the remaining groups allow and names why the rest goes", () => {
    expect(entitlementRefusal(policy, holder(["engineering"]), grant("payments-api-production"))).toBeNull();
    expect(entitlementRefusal(policy, holder(["oncall"]), grant("payments-api-production"))).toMatch(/Only members of engineering/);
    expect(entitlementRefusal(policy, holder(["engineering"], false), grant("payments-api-production"))).toBe("the person was deactivated");
    expect(entitlementRefusal(policy, holder([]), grant("sandbox"))).toMatch(/do not allow you to request/);
  });
  it("a break-glass grant is kept by its break-glass group", () => {
    expect(entitlementRefusal(policy, holder(["oncall"]), grant("staged", { breakGlass: true }))).toBeNull();
    expect(entitlementRefusal(policy, holder(["engineering-leads"]), grant("staged", { breakGlass: true }))).not.toBeNull();
  });
  it("groupDelta", () => {
    expect(groupDelta(["a", "b"], ["b", "c"])).toEqual({ added: ["c"], removed: ["a"] });
  });
});
