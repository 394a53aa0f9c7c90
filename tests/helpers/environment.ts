import { randomBytes } from "node:crypto";
import path from "node:path";

/** Configuration for code under test, set before lib/env.ts is first read. */
export function setTestEnvironment(databaseUrl: string, overrides: Record<string, string> = {}): void {
  Object.assign(process.env, {
    DATABASE_URL: databaseUrl,
    NEXTAUTH_URL: "http://localhost:3999",
    NEXTAUTH_SECRET: randomBytes(32).toString("base64url"),
    OIDC_ISSUER: "http://localhost:3998",
    OIDC_CLIENT_ID: "latchkey-test",
    OIDC_CLIENT_SECRET: "test-secret",
    LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    LATCHKEY_POLICY_FILE: path.join(process.cwd(), "tests/fixtures/policy.yaml"),
    ...overrides,
  });
}
