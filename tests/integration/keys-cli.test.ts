import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createPublicKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";

/** `npm run keys:pem` and `npm run keys:rotate` (scripts/keys.ts), run as an operator runs them, against a real database. */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let dir: string;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_KEY_PUBLISH_AHEAD: "1h" });
  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-keys-cli-"));
});
afterAll(async () => {
  await fx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function keysScript(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const only = {
    PATH: process.env.PATH,
    DATABASE_URL: fx.url,
    LATCHKEY_ENCRYPTION_KEY: process.env.LATCHKEY_ENCRYPTION_KEY,
    LATCHKEY_KEY_PUBLISH_AHEAD: "1h",
    ...env,
  };
  return new Promise((resolve) => {
    execFile(
      "node_modules/.bin/tsx",
      ["scripts/keys.ts", ...args],
      { env: Object.fromEntries(Object.entries(only).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const pems = (text: string) => text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----\n/g) ?? [];

describe("keys:pem and keys:rotate", () => {
  it("keys:pem prints every key a verifier must accept; with --dir it writes the key files HAProxy reads", { timeout: 240_000 }, async () => {
    const first = await keysScript(["pem"]);
    expect(first.code, first.stderr).toBe(0);
    expect(pems(first.stdout), `${first.stdout}\n${first.stderr}`).toHaveLength(1);
    const active = await fx.db.signingKey.findFirstOrThrow({ where: { status: "active" } });
    expect(first.stderr).toContain(`kid ${active.kid} (active)`);

    const rotate = await keysScript(["rotate", "--reason", "quarterly"]);
    expect(rotate.code, rotate.stderr).toBe(0);
    const next = await fx.db.signingKey.findFirstOrThrow({ where: { status: "next" } });
    expect(rotate.stdout).toContain(`Signing key ${next.kid} is published and signs from ${next.activatesAt!.toISOString()}`);
    expect(next.activatesAt!.getTime() - next.createdAt.getTime()).toBeGreaterThanOrEqual(3600_000);

    const both = await keysScript(["pem"]);
    expect(both.stderr).toContain(`kid ${active.kid} (active)`);
    expect(both.stderr).toContain(`kid ${next.kid} (next)`);
    const printed = pems(both.stdout);
    expect(printed).toHaveLength(2);
    // Each PEM is the public key JWKS publishes under that kid.
    const jwks = await fx.db.signingKey.findMany({ where: { kid: { in: [active.kid, next.kid] } }, orderBy: { createdAt: "asc" } });
    expect(printed.map((p) => createPublicKey(p).export({ format: "jwk" }).n)).toEqual(jwks.map((k) => (k.publicJwk as { n: string }).n));

    const keyDir = path.join(dir, "keys");
    const written = await keysScript(["pem", "--dir", keyDir]);
    expect(written.code, written.stderr).toBe(0);
    expect(written.stdout).toContain(`Wrote ${keyDir}: ${active.kid}, ${next.kid}.`);
    const files = await Promise.all([1, 2, 3, 4].map((i) => readFile(path.join(keyDir, `latchkey-key-${i}.pem`), "utf8")));
    expect(files[0]).toContain(active.kid);
    expect(files[1]).toContain(next.kid);
    for (const file of files) expect(pems(file)).toHaveLength(1);
    expect((await keysScript(["pem", "--dir", keyDir])).stdout).toContain(`Unchanged: ${keyDir}`);

    const now = await keysScript(["rotate", "--now", "--reason", "suspected leak"]);
    expect(now.stdout).toContain(`Signing key ${next.kid} is active (it was published ahead).`);
    expect(await fx.db.auditEvent.findFirst({ where: { action: "key.rotated", actorEmail: "npm run keys:rotate" } })).toMatchObject({
      data: { kid: next.kid, reason: "suspected leak", prepublished: true },
    });
  });

  it("needs LATCHKEY_ENCRYPTION_KEY, and says so", { timeout: 120_000 }, async () => {
    const refused = await keysScript(["pem"], { LATCHKEY_ENCRYPTION_KEY: undefined });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/LATCHKEY_ENCRYPTION_KEY: is not set/);
  });
});
