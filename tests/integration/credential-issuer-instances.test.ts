import { execFile } from "node:child_process";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantingFixture } from "../helpers/engine-fixture";

/**
 * README: `npm run keys:issuer -- <url>` changes the issuer, "after which credentials carrying
 * the old issuer are refused". Here the change is made by the command, in a process of its
 * own, while this process runs as a portal instance does, with its answers and the issuer
 * kept in memory: it refuses the old issuer's credentials and issues under the new one at
 * once, not when its memory ages out.
 */
let fx: Awaited<ReturnType<typeof grantingFixture>>["fx"];
let grant: () => Promise<string>;

beforeAll(async () => {
  ({ fx, grant } = await grantingFixture({ NEXTAUTH_URL: "http://portal-a.example.com" }));
});
afterAll(() => fx?.close());

function keysIssuer(url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const only = {
    PATH: process.env.PATH,
    DATABASE_URL: fx.url,
    LATCHKEY_ENCRYPTION_KEY: process.env.LATCHKEY_ENCRYPTION_KEY,
    LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
  };
  return new Promise((resolve) => {
    execFile(
      "node_modules/.bin/tsx",
      ["scripts/keys.ts", "issuer", url],
      { env: only as unknown as NodeJS.ProcessEnv, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("an issuer change made by another process", () => {
  it(
    "is followed by a running instance at once: the old issuer's credentials are refused and new ones carry the new issuer",
    { timeout: 120_000 },
    async () => {
      const { verifyCredential } = await import("@/lib/authz/verify");
      const { changesLive } = await import("@/lib/db/changes");
      await expect.poll(() => changesLive(), { timeout: 10_000 }).toBe(true);
      const old = await grant();
      expect(decodeJwt(old).iss).toBe("http://portal-a.example.com");
      // Asked about the present, as forward-auth asks: the answer and the issuer are now kept in memory.
      expect(await verifyCredential(old)).toMatchObject({ ok: true });
      expect(await verifyCredential(old)).toMatchObject({ ok: true });

      const changed = await keysIssuer("https://latchkey.example.com");
      expect(changed.code, changed.stderr).toBe(0);
      // Within the change feed's delivery (milliseconds), far inside the minute the issuer is otherwise kept.
      await expect.poll(async () => (await verifyCredential(old)).ok, { timeout: 5_000, interval: 100 }).toBe(false);
      expect(await verifyCredential(old)).toMatchObject({ ok: false, reason: expect.stringMatching(/claim check.*iss/) });
      const fresh = await grant();
      expect(decodeJwt(fresh).iss).toBe("https://latchkey.example.com");
      expect(await verifyCredential(fresh)).toMatchObject({ ok: true });

      // The second change, back again: followed the same way.
      const back = await keysIssuer("http://portal-a.example.com");
      expect(back.code, back.stderr).toBe(0);
      await expect.poll(async () => (await verifyCredential(fresh)).ok, { timeout: 5_000, interval: 100 }).toBe(false);
      expect(await verifyCredential(old)).toMatchObject({ ok: true });
    },
  );
});
