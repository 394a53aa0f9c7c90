import { execFile } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  fx = await engineFixture();
  const { createPersonalToken } = await import("@/lib/api/tokens");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  tokens.alice = (await createPersonalToken(alice, { name: "cli", scopes: ["requests:read", "requests:write", "credentials:read"], expiresInDays: 1 })).secret;
  tokens.bob = (await createPersonalToken(bob, { name: "cli", scopes: ["requests:read", "requests:write", "approvals:write"], expiresInDays: 1 })).secret;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

/** Runs the real CLI (bin/latchkey.mjs) in a child process against the API. */
function latchkey(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(process.cwd(), "bin/latchkey.mjs"), ...args], { env: { NODE_ENV: "test", PATH: process.env.PATH, LATCHKEY_URL: api.url, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("the latchkey CLI", () => {
  it("requests, is approved by another person's token, and prints the credential once", async () => {
    const made = await latchkey(
      ["request", "temporary-access", "--target", "payments-api-staging", "--role", "read", "--duration", "1h", "--justification", "Checking the retry queue for INC-77", "--json"],
      { LATCHKEY_TOKEN: tokens.alice },
    );
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    const request = JSON.parse(made.stdout);
    expect(request).toMatchObject({ status: "pending", durationSeconds: 3600, requester: "alice@example.com" });

    const own = await latchkey(["approve", request.id], { LATCHKEY_TOKEN: tokens.alice });
    expect(own.code).toBe(1);
    expect(own.stderr).toMatch(/lacks the approvals:write scope/);

    const approved = await latchkey(["approve", request.id, "--comment", "fine"], { LATCHKEY_TOKEN: tokens.bob });
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(new RegExp(`^${request.id}  active  temporary-access`));
    expect(approved.stdout).toContain("approved by bob@example.com");

    const status = await latchkey(["status", request.id, "--wait"], { LATCHKEY_TOKEN: tokens.alice });
    expect(status.stdout).toContain(`latchkey credential ${request.id}`);
    const credential = await latchkey(["credential", request.id], { LATCHKEY_TOKEN: tokens.alice });
    expect(credential.code).toBe(0);
    expect(credential.stdout.trim().split(".")).toHaveLength(3);
    expect(credential.stderr).toMatch(/will not show it again/);
    const again = await latchkey(["credential", request.id], { LATCHKEY_TOKEN: tokens.alice });
    expect(again).toMatchObject({ code: 1, stdout: "" });
    expect(again.stderr).toMatch(/already shown once/);
  });

  it("reads the token from a file, lists workflows and says who it is", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-cli-"));
    writeFileSync(path.join(dir, "token"), `${tokens.alice}\n`, { mode: 0o600 });
    const who = await latchkey(["whoami", "--token-file", path.join(dir, "token")]);
    expect(who.stdout).toContain("alice@example.com  roles: requester");
    const list = await latchkey(["workflows"], { LATCHKEY_TOKEN: tokens.alice });
    expect(list.stdout).toMatch(/temporary-access: Temporary access/);
    expect(list.stdout).toMatch(/--target payments-api-staging/);
  });

  it("explains refusals and wrong usage with exit codes 1 and 2", async () => {
    const invalid = await latchkey(["request", "temporary-access", "--target", "payments-api-staging", "--role", "read", "--duration", "9999m", "--justification", "Checking the retry queue again"], { LATCHKEY_TOKEN: tokens.alice });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/durationMinutes: Duration must be between/);
    expect(await latchkey(["whoami"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/No API token/) });
    expect(await latchkey(["whoami"], { LATCHKEY_TOKEN: "lkp_" + "x".repeat(43) })).toMatchObject({ code: 1, stderr: expect.stringMatching(/Unknown API token/) });
    expect(await latchkey(["frobnicate"], { LATCHKEY_TOKEN: tokens.alice })).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command/) });
    expect(await latchkey(["request", "temporary-access", "--target", "x"], { LATCHKEY_TOKEN: tokens.alice })).toMatchObject({ code: 2, stderr: expect.stringMatching(/--justification/) });
    expect(await latchkey(["request", "temporary-access", "--target", "x", "--justification", "y", "--duration", "soon"], { LATCHKEY_TOKEN: tokens.alice })).toMatchObject({ code: 2 });
  });
});
