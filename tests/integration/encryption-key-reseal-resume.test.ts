import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "../helpers/database";
import { engineFixture, validInput } from "../helpers/engine-fixture";

/**
 * README "Changing the encryption key", step 2: `npm run keys:reseal` re-seals "in batches,
 * each batch with its encryption_key.resealed audit event; stopped, it resumes where it left
 * off". Here the command is stopped by a failure in its third batch (a trigger the test
 * installs refuses the write, as a full disk or a dropped connection would): the batches
 * before it stay committed and audited, and the next run re-seals only what is left.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
const keyA = randomBytes(32).toString("base64");
const keyB = randomBytes(32).toString("base64");
const idOf = (b64: string) => `ek-${createHmac("sha256", Buffer.from(b64, "base64")).update("latchkey encryption key id").digest("hex").slice(0, 16)}`;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_ENCRYPTION_KEY: keyA });
  const engine = await import("@/lib/approvals/engine");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  // Four credentials waiting to be revealed and the signing key: five values sealed under A.
  for (let i = 0; i < 4; i++) {
    const r = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: r.id, decision: "approve", comment: `grant ${i}` });
  }
});
afterAll(() => fx?.close());

function reseal(): Promise<{ code: number; stdout: string; stderr: string }> {
  const only = {
    PATH: process.env.PATH,
    DATABASE_URL: fx.url,
    LATCHKEY_ENCRYPTION_KEY: `${keyB},${keyA}`,
    LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
  };
  return new Promise((resolve) => {
    execFile(
      "node_modules/.bin/tsx",
      ["scripts/keys.ts", "reseal", "--batch", "1"],
      { env: only as unknown as NodeJS.ProcessEnv, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
const sealedUnder = async () => {
  const keys = await fx.db.signingKey.findMany({ select: { privateKeySealed: true } });
  const creds = await fx.db.credential.findMany({ where: { sealedToken: { not: null } }, select: { sealedToken: true } });
  const counts: Record<string, number> = {};
  for (const s of [...keys.map((k) => k.privateKeySealed), ...creds.map((c) => c.sealedToken!)]) counts[s.split(".")[1]!] = (counts[s.split(".")[1]!] ?? 0) + 1;
  return counts;
};
const resealedValues = async () => {
  const steps = await fx.db.auditEvent.findMany({ where: { action: "encryption_key.resealed" }, orderBy: { id: "asc" } });
  return steps.map((e) => {
    const data = e.data as Record<string, number>;
    return data["signing keys"]! + data.credentials! + data["request secrets"]!;
  });
};

describe("keys:reseal stopped part way", () => {
  it("keeps the batches it finished, audited, and the next run re-seals only what is left", { timeout: 240_000 }, async () => {
    expect(await sealedUnder()).toEqual({ [idOf(keyA)]: 5 });
    await sql(
      fx.url,
      `CREATE SEQUENCE drill_writes;
       CREATE FUNCTION drill_fail() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF nextval('drill_writes') = 3 THEN RAISE EXCEPTION 'could not write: the disk is full (drill)'; END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER drill_fail BEFORE UPDATE OF "sealedToken" ON "Credential" FOR EACH ROW EXECUTE FUNCTION drill_fail()`,
    );
    // Batches of one value of each kind: the key and a credential, then a credential; the third credential's write fails.
    const stopped = await reseal();
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain("the disk is full (drill)");
    expect(stopped.stdout.match(/^Re-sealed /gm)).toHaveLength(2);
    expect(await resealedValues()).toEqual([2, 1]);
    expect(await sealedUnder()).toEqual({ [idOf(keyA)]: 2, [idOf(keyB)]: 3 });

    await sql(fx.url, `DROP TRIGGER drill_fail ON "Credential"`);
    const resumed = await reseal();
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`Everything sealed is under encryption key ${idOf(keyB)} (2 values re-sealed now)`);
    // Each value was re-sealed once: five values, five re-sealings across both runs.
    expect(await resealedValues()).toEqual([2, 1, 1, 1]);
    expect(await sealedUnder()).toEqual({ [idOf(keyB)]: 5 });
    // The second time there is nothing left: it re-seals nothing and records nothing.
    const again = await reseal();
    expect(again.stdout).toContain("(0 values re-sealed now)");
    expect(await resealedValues()).toHaveLength(4);
  });
});
