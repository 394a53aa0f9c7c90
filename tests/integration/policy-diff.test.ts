import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, sql } from "../helpers/database";

/** policy:diff with a real database: groups resolve to the people known from their last sign-ins. */
const root = process.cwd();
const shippedText = readFileSync(path.join(root, "policy/latchkey.yaml"), "utf8");
const dir = mkdtempSync(path.join(tmpdir(), "latchkey-policy-diff-db-"));
let database: Awaited<ReturnType<typeof createTestDatabase>>;

function edit(text: string, from: string, to: string): string {
  expect(text).toContain(from);
  return text.replace(from, to);
}

function diff(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      path.join(root, "node_modules/.bin/tsx"),
      ["scripts/policy.ts", "diff", ...args],
      { cwd: root, env: { ...process.env, DATABASE_URL: database.url } },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function signIn(id: string, email: string, groups: string[], requestOnly = false) {
  await sql(
    database.url,
    `INSERT INTO "User" (id, email, groups, "requestOnly", "lastSignInAt", "updatedAt") VALUES ($1, $2, $3, $4, now(), now())
     ON CONFLICT (email) DO UPDATE SET groups = EXCLUDED.groups, "lastSignInAt" = now(), "updatedAt" = now()`,
    [id, email, groups, requestOnly],
  );
}

beforeAll(async () => {
  database = await createTestDatabase();
  await signIn("u-alice", "alice@example.com", ["engineering"]);
  await signIn("u-bob", "bob@example.com", ["engineering-leads"]);
  await signIn("u-dave", "dave@example.com", ["platform-admins"]);
  await signIn("u-ci", "ci-bot@example.com", ["engineering-leads"], true);
});
afterAll(async () => {
  await database?.drop();
});

describe("npm run policy:diff with DATABASE_URL", () => {
  let after = shippedText;
  after = edit(
    after,
    "        requesters: [engineering, engineering-leads, platform-admins]\n        stages:\n          - { name: Team lead, groups: [engineering-leads, platform-admins], required: 1 }\n        # Platform",
    "        requesters: [engineering-leads, platform-admins]\n        stages:\n          - { name: Team lead, groups: [engineering-leads, platform-admins], required: 1 }\n        # Platform",
  );
  after = edit(
    after,
    "          - { name: Data owner, groups: [platform-admins], required: 1 }\n        minDuration: 15m\n        maxDuration: 1h",
    "          - { name: Data owner, groups: [platform-admins, engineering-leads], required: 2 }\n        minDuration: 15m\n        maxDuration: 1h",
  );
  const before = path.join(dir, "before.yaml");
  const current = path.join(dir, "after.yaml");
  writeFileSync(before, shippedText);
  writeFileSync(current, after);

  it("names the people who gain and lose, and never a request-only identity as an approver", async () => {
    const result = await diff(before, "--file", current);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("(2 changes; people as known from their last sign-ins)");
    expect(result.stdout).toContain("- temporary-access on payments-api-production: may request: engineering removed. No longer: alice@example.com.\n");
    expect(result.stdout).toContain(
      "- temporary-access on ledger-db-production: stage 2 approvers: Data owner: 1 of platform-admins → Data owner: 2 of platform-admins, engineering-leads. Now also: bob@example.com.\n",
    );
    expect(result.stdout).not.toContain("ci-bot@example.com");
    expect(result.stdout).toMatch(/\| temporary-access on payments-api-production \| may request +\| .* \| - +\| alice@example\.com +\|/);
  }, 60_000);

  it("a second run follows the latest sign-ins: a new member of a group is counted, one who left is not", async () => {
    await signIn("u-erin", "erin@example.com", ["engineering-leads"]);
    await signIn("u-alice", "alice@example.com", ["support"]);
    const result = await diff(before, "--file", current, "--markdown");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("2 changes; people as known from their last sign-ins.");
    expect(result.stdout).toContain("- temporary-access on payments-api-production: may request: engineering removed.\n");
    expect(result.stdout).toContain("Now also: bob@example.com, erin@example.com.\n");
    expect(result.stdout).toContain("| where | what | before | after | gaining | losing |");
  }, 60_000);
});
