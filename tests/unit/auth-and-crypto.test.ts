import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { groupsFromClaims } from "@/lib/auth/groups";
import { seal, unseal } from "@/lib/credentials/seal";
import { parseEnv } from "@/lib/env";

describe("groups claim", () => {
  it("reads a list, a string and a nested claim", () => {
    expect(groupsFromClaims({ groups: ["b", "a", "a"] }, "groups")).toEqual(["a", "b"]);
    expect(groupsFromClaims({ roles: "eng, leads" }, "roles")).toEqual(["eng", "leads"]);
    expect(groupsFromClaims({ realm_access: { roles: ["x"] } }, "realm_access.roles")).toEqual(["x"]);
  });
  it("a missing or odd claim gives no groups", () => {
    expect(groupsFromClaims({}, "groups")).toEqual([]);
    expect(groupsFromClaims({ groups: [1, null, ""] }, "groups")).toEqual([]);
  });
});

describe("sealing secrets at rest", () => {
  const key = randomBytes(32);
  it("round-trips", () => {
    expect(unseal(key, seal(key, "secret", "ctx"), "ctx")).toBe("secret");
  });
  it("refuses another key, another context or a changed ciphertext", () => {
    const sealed = seal(key, "secret", "ctx");
    expect(() => unseal(randomBytes(32), sealed, "ctx")).toThrow();
    expect(() => unseal(key, sealed, "other")).toThrow();
    const parts = sealed.split(".");
    parts[3] = Buffer.from("tampered").toString("base64url");
    expect(() => unseal(key, parts.join("."), "ctx")).toThrow();
  });
});

describe("configuration", () => {
  const good = {
    DATABASE_URL: "postgresql://localhost/latchkey",
    NEXTAUTH_SECRET: "x".repeat(32),
    OIDC_ISSUER: "https://idp.example.com",
    OIDC_CLIENT_ID: "latchkey",
    OIDC_CLIENT_SECRET: "s",
    LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
  };
  it("accepts a complete configuration with defaults", () => {
    const e = parseEnv(good);
    expect(e.OIDC_GROUPS_CLAIM).toBe("groups");
    expect(e.LATCHKEY_POLICY_FILE).toBe("policy/latchkey.yaml");
  });
  it("names each bad variable", () => {
    const attempt = () => parseEnv({ ...good, LATCHKEY_ENCRYPTION_KEY: "short", OIDC_ISSUER: undefined });
    expect(attempt).toThrowError(/LATCHKEY_ENCRYPTION_KEY: must be 32 bytes/);
    expect(attempt).toThrowError(/OIDC_ISSUER: is not set/);
  });
  it("reads the time a next signing key is published ahead, and refuses one that is not shorter than the rotation period", () => {
    expect(parseEnv(good).LATCHKEY_KEY_PUBLISH_AHEAD).toBe(86_400);
    expect(parseEnv({ ...good, LATCHKEY_KEY_PUBLISH_AHEAD: "90s" }).LATCHKEY_KEY_PUBLISH_AHEAD).toBe(90);
    expect(parseEnv({ ...good, LATCHKEY_KEY_PUBLISH_AHEAD: "30m" }).LATCHKEY_KEY_PUBLISH_AHEAD).toBe(1800);
    expect(parseEnv({ ...good, LATCHKEY_KEY_PUBLISH_AHEAD: "2d" }).LATCHKEY_KEY_PUBLISH_AHEAD).toBe(172_800);
    expect(parseEnv({ ...good, LATCHKEY_KEY_PUBLISH_AHEAD: "0" }).LATCHKEY_KEY_PUBLISH_AHEAD).toBe(0);
    expect(() => parseEnv({ ...good, LATCHKEY_KEY_PUBLISH_AHEAD: "a day" })).toThrowError(/LATCHKEY_KEY_PUBLISH_AHEAD: must be a duration such as "90s"/);
    expect(() => parseEnv({ ...good, LATCHKEY_KEY_PUBLISH_AHEAD: "30d" })).toThrowError(
      /LATCHKEY_KEY_PUBLISH_AHEAD: must be shorter than the rotation period \(LATCHKEY_KEY_ROTATION_DAYS=30\)/,
    );
    expect(parseEnv({ ...good, LATCHKEY_KEY_PUBLISH_AHEAD: "60d", LATCHKEY_KEY_ROTATION_DAYS: "0" }).LATCHKEY_KEY_PUBLISH_AHEAD).toBe(60 * 86_400);
    expect(() => parseEnv({ ...good, LATCHKEY_KEY_WEBHOOK_URL: "not a url" })).toThrowError(/LATCHKEY_KEY_WEBHOOK_URL/);
  });
});
