import { execFile } from "node:child_process";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantingFixture } from "../helpers/engine-fixture";

/**
 * README "Several instances": what an instance keeps in memory, the active signing key among
 * it, "is dropped the moment another instance revokes, ends or changes it". Here
 * `npm run keys:rotate -- --now` (a suspected leak) runs in a process of its own while this
 * process issues credentials as a running instance does: its next credential is signed by
 * the new key at once, not when its memory ages out, and the old key's credentials still
 * verify while they live.
 */
let fx: Awaited<ReturnType<typeof grantingFixture>>["fx"];
let grant: () => Promise<string>;

beforeAll(async () => {
  ({ fx, grant } = await grantingFixture({ LATCHKEY_KEY_PUBLISH_AHEAD: "0" }));
});
afterAll(() => fx?.close());

function rotateNow(): Promise<{ code: number; stdout: string; stderr: string }> {
  const only = {
    PATH: process.env.PATH,
    DATABASE_URL: fx.url,
    LATCHKEY_ENCRYPTION_KEY: process.env.LATCHKEY_ENCRYPTION_KEY,
    LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
    LATCHKEY_KEY_PUBLISH_AHEAD: "0",
  };
  return new Promise((resolve) => {
    execFile(
      "node_modules/.bin/tsx",
      ["scripts/keys.ts", "rotate", "--now", "--reason", "suspected leak"],
      { env: only as unknown as NodeJS.ProcessEnv, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("a signing key rotated by another process", () => {
  it("is no longer used by a running instance for its next credential; the old key's credentials still verify", { timeout: 120_000 }, async () => {
    const { changesLive } = await import("@/lib/db/changes");
    const { verifyCredential } = await import("@/lib/authz/verify");
    await expect.poll(() => changesLive(), { timeout: 10_000 }).toBe(true);
    const before = await grant();
    const oldKid = decodeProtectedHeader(before).kid!;
    // Kept in memory: the second credential is signed without reading the key again.
    expect(decodeProtectedHeader(await grant()).kid).toBe(oldKid);

    // Twice: the second rotation is heard as the first was.
    let previous = oldKid;
    for (let round = 1; round <= 2; round++) {
      const rotated = await rotateNow();
      expect(rotated.code, rotated.stderr).toBe(0);
      const active = (await fx.db.signingKey.findFirstOrThrow({ where: { status: "active" } })).kid;
      expect(active).not.toBe(previous);
      // Within the change feed's delivery (milliseconds), far inside the minute the key is otherwise kept.
      await expect.poll(async () => decodeProtectedHeader(await grant()).kid, { timeout: 5_000, interval: 200 }).toBe(active);
      expect(await verifyCredential(before)).toMatchObject({ ok: true });
      previous = active;
    }
  });
});
