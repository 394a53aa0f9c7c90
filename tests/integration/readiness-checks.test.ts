import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "../helpers/database";
import { engineFixture } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * README "Health and readiness": /api/ready answers 503 naming the failing check when a
 * migration of this build is not applied, when the policy does not load, and when
 * LATCHKEY_ENCRYPTION_KEY does not open what the database holds (here: another instance,
 * restarted with a new key, sealed a signing key under it). The first two turn green again
 * by themselves once mended, without a restart. database-refusals.test.ts covers writes.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let dir: string;
let policyFile: string;
const keyA = randomBytes(32).toString("base64");
const keyB = randomBytes(32).toString("base64");
const idOf = (b64: string) => `ek-${createHmac("sha256", Buffer.from(b64, "base64")).update("latchkey encryption key id").digest("hex").slice(0, 16)}`;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-ready-"));
  policyFile = path.join(dir, "policy.yaml");
  copyFileSync(path.join(process.cwd(), "tests/fixtures/policy.yaml"), policyFile);
  fx = await engineFixture({ LATCHKEY_ENCRYPTION_KEY: keyA, LATCHKEY_POLICY_FILE: policyFile });
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ready = async () => {
  const response = await fetch(`${api.url}/api/ready`);
  return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, string> } };
};
/** Writes the policy file with a later modification time, so the next read sees the change. */
let edits = 0;
function writePolicy(text: string) {
  writeFileSync(policyFile, text);
  const at = new Date(Date.now() + ++edits * 1000);
  utimesSync(policyFile, at, at);
}

describe("readiness names what is not ready", () => {
  /** The migration the first test takes away; the second puts it back (the key check runs only once migrations are applied). */
  let missing: string;

  it("a missing migration and a policy that does not load, each named; the policy's check turns green once mended", { timeout: 60_000 }, async () => {
    const good = readFileSync(policyFile, "utf8");
    const { rows } = await sql(fx.url, `SELECT name FROM "_latchkey_migrations" ORDER BY name DESC LIMIT 1`);
    const newest = rows[0].name as string;
    await sql(fx.url, `UPDATE "_latchkey_migrations" SET name = name || '-taken-away' WHERE name = $1`, [newest]);
    writePolicy(`${good}\nworkflows: [this is not a workflow map\n`);

    const red = await ready();
    expect(red.status).toBe(503);
    expect(red.body.status).toBe("not ready");
    expect(red.body.checks.migrations).toBe(`1 not applied: ${newest}`);
    expect(red.body.checks.policy).not.toBe("ok");
    expect(red.body.checks.policy).toContain(policyFile);
    expect(red.body.checks).toMatchObject({ database: "ok", writes: "ok" });

    writePolicy(good);
    expect((await ready()).body.checks.policy).toBe("ok");
    missing = newest;
  });

  it(
    "the migration applied, its check turns green; an encryption key that cannot open what another instance sealed since is named",
    { timeout: 120_000 },
    async () => {
      // Another instance restarted with B first and A kept rotates the signing key: it is sealed under B, which this instance lacks.
      const rotated = await new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          "node_modules/.bin/tsx",
          ["scripts/keys.ts", "rotate", "--now", "--reason", "new encryption key"],
          {
            env: {
              PATH: process.env.PATH,
              DATABASE_URL: fx.url,
              LATCHKEY_ENCRYPTION_KEY: `${keyB},${keyA}`,
              LATCHKEY_POLICY_FILE: policyFile,
            } as unknown as NodeJS.ProcessEnv,
            timeout: 120_000,
          },
          (error, _stdout, stderr) => resolve({ code: error ? 1 : 0, stderr }),
        ),
      );
      expect(rotated.code, rotated.stderr).toBe(0);
      await sql(fx.url, `UPDATE "_latchkey_migrations" SET name = $1 WHERE name = $1 || '-taken-away'`, [missing]);
      const red = await ready();
      expect(red.status).toBe(503);
      expect(red.body.checks.encryptionKey).toContain("LATCHKEY_ENCRYPTION_KEY");
      expect(red.body.checks.encryptionKey).toContain(idOf(keyB));
      expect(red.body.checks).toMatchObject({ database: "ok", migrations: "ok", writes: "ok", policy: "ok" });
    },
  );
});
