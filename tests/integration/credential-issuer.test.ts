import { execFile } from "node:child_process";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantingFixture } from "../helpers/engine-fixture";
import { holdTransactions } from "../helpers/hold-connections";

/** The issuer of credentials is pinned at first use, so moving the portal does not silently break outstanding credentials. */
let fx: Awaited<ReturnType<typeof grantingFixture>>["fx"];
let grant: () => Promise<string>;

beforeAll(async () => {
  ({ fx, grant } = await grantingFixture({ NEXTAUTH_URL: "http://portal-a.example.com" }));
});
afterAll(() => fx?.close());

function issuerScript(args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const only = {
    PATH: process.env.PATH,
    DATABASE_URL: fx.url,
    LATCHKEY_ENCRYPTION_KEY: process.env.LATCHKEY_ENCRYPTION_KEY,
    LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
    ...extra,
  };
  return new Promise((resolve) => {
    execFile(
      "node_modules/.bin/tsx",
      ["scripts/keys.ts", "issuer", ...args],
      { env: only as unknown as NodeJS.ProcessEnv, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// A time a second ahead asks the database, not the answers kept for the present.
const verify = async (token: string) => (await import("@/lib/authz/verify")).verifyCredential(token, new Date(Date.now() + 1500));

describe("the credential issuer", () => {
  it(
    "is pinned at first use and audited; moving the portal (a new NEXTAUTH_URL) keeps it, so outstanding credentials keep verifying",
    { timeout: 120_000 },
    async () => {
      expect(await fx.db.installationSetting.findUnique({ where: { name: "token-issuer" } })).toBeNull();
      // A first use in a transaction that rolls back pins nothing and leaves nothing known to this process: neither the
      // issuer nor a signing key made in it, so the next approval pins the issuer and makes a key that exist.
      const { credentialIssuer } = await import("@/lib/credentials/issuer");
      const { activeSigningKey } = await import("@/lib/credentials/keys");
      const keysBefore = await fx.db.signingKey.count();
      // Heard changes are what let a process keep these answers at all (lib/db/changes.ts): listening first.
      const { changesLive } = await import("@/lib/db/changes");
      for (let i = 0; i < 250 && !changesLive(); i++) await new Promise((r) => setTimeout(r, 20));
      expect(changesLive()).toBe(true);
      const undone = await fx.db
        .$transaction(async (tx) => {
          expect(await credentialIssuer(tx)).toBe("http://portal-a.example.com");
          await activeSigningKey(tx);
          throw new Error("rolled back on purpose");
        })
        .catch((error: Error) => error.message);
      expect(undone).toBe("rolled back on purpose");
      expect(await fx.db.installationSetting.findUnique({ where: { name: "token-issuer" } })).toBeNull();
      expect(await fx.db.signingKey.count()).toBe(keysBefore);
      // The first approval pins it in its own transaction, on its own connection: with every other connection of the pool
      // held, a second one for the pin would wait for the approval's own and fail it as a busy database.
      const { connectionLimit, processPool } = await import("@/lib/db");
      const { release, holders } = await holdTransactions(fx.db, connectionLimit(processPool()) - 1);
      let token: string;
      try {
        token = await grant();
      } finally {
        release();
        await Promise.all(holders);
      }
      expect(decodeJwt(token).iss).toBe("http://portal-a.example.com");
      expect(await fx.db.installationSetting.findUnique({ where: { name: "token-issuer" } })).toMatchObject({ value: "http://portal-a.example.com" });
      expect(await fx.db.auditEvent.count({ where: { action: "token_issuer.pinned" } })).toBe(1);

      const moved = await issuerScript([], { NEXTAUTH_URL: "https://portal-b.example.com" });
      expect(moved.code, moved.stderr).toBe(0);
      expect(moved.stdout).toContain("Credentials are issued by http://portal-a.example.com.");
      expect(await fx.db.installationSetting.findUnique({ where: { name: "token-issuer" } })).toMatchObject({ value: "http://portal-a.example.com" });
      expect(await verify(token)).toMatchObject({ ok: true });
    },
  );

  it(
    "keys:issuer changes it on purpose, audited, and says that credentials carrying the old issuer are refused from then on",
    { timeout: 120_000 },
    async () => {
      const old = await grant();
      const bad = await issuerScript(["not a url"]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('"not a url" is not a URL');
      const changed = await issuerScript(["https://latchkey.example.com"]);
      expect(changed.code, changed.stderr).toBe(0);
      expect(changed.stdout).toMatch(
        /Credentials are now issued by https:\/\/latchkey.example.com \(were http:\/\/portal-a.example.com\)\. \d+ outstanding credentials carry the old issuer/,
      );
      expect(await fx.db.auditEvent.findFirst({ where: { action: "token_issuer.changed" } })).toMatchObject({
        data: { from: "http://portal-a.example.com", to: "https://latchkey.example.com" },
      });
      const { changeCredentialIssuer } = await import("@/lib/credentials/issuer");
      // Running instances hear of the change as it commits (credential-issuer-instances.test.ts); here it is made in this process too.
      await changeCredentialIssuer({ type: "system", email: "test" }, "https://latchkey.example.com");
      expect(await verify(old)).toMatchObject({ ok: false, reason: expect.stringMatching(/claim check.*iss/) });
      const fresh = await grant();
      expect(decodeJwt(fresh).iss).toBe("https://latchkey.example.com");
      expect(await verify(fresh)).toMatchObject({ ok: true });
    },
  );
});
