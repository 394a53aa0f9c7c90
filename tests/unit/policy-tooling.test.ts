import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Ajv from "ajv";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { policyJsonSchema } from "@/lib/policy/json-schema";
import { loadPolicyFile } from "@/lib/policy/load";
import { runPolicyTests } from "@/lib/policy/test-cases";

const root = process.cwd();
const run = promisify(execFile);
const tsx = path.join(root, "node_modules/.bin/tsx");
const shippedText = readFileSync(path.join(root, "policy/latchkey.yaml"), "utf8");
const shipped = loadPolicyFile(path.join(root, "policy/latchkey.yaml"));
const dir = mkdtempSync(path.join(tmpdir(), "latchkey-policy-tooling-"));

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(tsx, ["scripts/policy.ts", ...args], { cwd: root, env: { ...process.env, DATABASE_URL: "" } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

describe("the JSON Schema editors use", () => {
  const schema = JSON.parse(readFileSync(path.join(root, "policy/latchkey.schema.json"), "utf8")) as Record<string, unknown>;
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);

  it("is current: regenerate with npm run policy:schema after changing lib/policy/schema.ts", () => {
    expect(readFileSync(path.join(root, "policy/latchkey.schema.json"), "utf8")).toBe(policyJsonSchema());
  });

  it("is what the shipped policy points its editor at", () => {
    expect(shippedText.split("\n")[0]).toBe("# yaml-language-server: $schema=./latchkey.schema.json");
  });

  it("describes every key", () => {
    const undescribed: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (!node || typeof node !== "object") return;
      const object = node as Record<string, unknown>;
      for (const [key, child] of Object.entries((object.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if (typeof child.description !== "string" || child.description.length < 10) undescribed.push(`${at}.${key}`);
      }
      for (const value of Object.values(object)) walk(value, at);
    };
    walk(schema, "policy");
    expect(undescribed).toEqual([]);
  });

  it("accepts the shipped policy and flags the typos an editor should underline", () => {
    expect(validate(parse(shippedText)), JSON.stringify(validate.errors)).toBe(true);
    for (const [from, to, key] of [
      ["        pendingTimeout: 8h", "        pendingTimout: 8h", "pendingTimout"],
      ["        breakGlass: {", "        breakglass: {", "breakglass"],
      ["roles: [read], maxDuration: 1h }", "roles: [read], maxDuraton: 1h }", "maxDuraton"],
    ] as const) {
      expect(validate(parse(shippedText.replace(from, to)))).toBe(false);
      expect(validate.errors).toContainEqual(expect.objectContaining({ keyword: "additionalProperties", params: { additionalProperty: key } }));
    }
  });
});

describe("policy tests", () => {
  const testFiles = readdirSync(path.join(root, "policy/tests")).filter((f) => /\.ya?ml$/.test(f));
  it("policy/tests holds the shipped policy's cases", () => {
    expect(testFiles).toContain("shipped.yaml");
  });
  for (const name of testFiles) {
    it(`every case of policy/tests/${name} passes against the shipped policy`, () => {
      const file = `policy/tests/${name}`;
      const result = runPolicyTests(shipped, readFileSync(path.join(root, file), "utf8"), file);
      expect(result.failed, result.report).toBe(0);
      expect(result.passed).toBeGreaterThan(0);
    });
  }

  it("the example in the README's policy section runs, and passes", () => {
    const readme = readFileSync(path.join(root, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## The policy"), readme.indexOf("\n## ", readme.indexOf("## The policy") + 1));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toContain("approvals: [bob]");
    expect(runPolicyTests(shipped, example!, "README.md")).toEqual({
      passed: 2,
      failed: 0,
      report: "README.md\n  ✓ alice may request production, read, 1h; stage 1 is approvable by bob and dave\n  ✓ bob may not approve his own request",
    });
  });

  const wrong = `people:
  alice: [engineering]
  bob: [engineering-leads]
  dave: [platform-admins]
cases:
  - name: staging read for 30m
    as: alice
    request: { workflow: temporary-access, target: payments-api-staging, role: read, duration: 30m }
    expect: { result: auto-approved, rule: staging-read-under-1h }
  - name: production read for 1h, as if only bob could approve
    as: alice
    request: { workflow: temporary-access, target: payments-api-production, role: read, duration: 1h }
    expect: { result: pending, stage: 1, approvers: [bob] }
  - name: staging read for 2h, wrongly expected to be auto-approved
    as: alice
    request: { workflow: temporary-access, target: payments-api-staging, role: read, duration: 2h }
    expect: { result: auto-approved, rule: staging-read-under-1h }
`;

  it("a wrong expectation fails, with expected and actual side by side", () => {
    const result = runPolicyTests(shipped, wrong, "wrong.yaml");
    expect({ passed: result.passed, failed: result.failed }).toEqual({ passed: 1, failed: 2 });
    expect(result.report).toBe(
      [
        "wrong.yaml",
        "  ✓ staging read for 30m",
        "  ✗ production read for 1h, as if only bob could approve",
        "         field      expected  actual",
        "         result     pending   pending",
        "         stage      1         1",
        "      ✗  approvers  bob       bob, dave",
        "  ✗ staging read for 2h, wrongly expected to be auto-approved",
        "         field      expected               actual",
        "      ✗  result     auto-approved          pending",
        "      ✗  rule       staging-read-under-1h  -",
        "         stage      (any)                  1",
        "         approvers  (any)                  bob, dave",
      ].join("\n"),
    );
  });

  it("a test file is read as strictly as the policy", () => {
    const typo = wrong
      .replace("expect: { result: pending, stage: 1, approvers: [bob] }", "expect: { result: pending, stage: 1, approver: [bob] }")
      .replace(
        "as: alice\n    request: { workflow: temporary-access, target: payments-api-staging, role: read, duration: 2h }",
        "as: mallory\n    request: { workflow: temporary-access, target: payments-api-staging, role: read, duration: 2h }",
      );
    const result = runPolicyTests(shipped, typo, "typo.yaml");
    expect(result).toEqual({
      passed: 0,
      failed: 1,
      report: [
        "typo.yaml: invalid policy test file",
        "  typo.yaml:13:42: cases.1.expect: `approver` is not a key of a case's expectation; did you mean `approvers`?",
        '  typo.yaml:15:9: cases.2.as: "mallory" is not one of people',
      ].join("\n"),
    });
    const stranger = runPolicyTests(
      shipped,
      wrong.replace(
        "  - name: staging read for 2h, wrongly expected to be auto-approved\n    as: alice",
        "  - name: staging read for 2h, wrongly expected to be auto-approved\n    as: mallory",
      ),
      "stranger.yaml",
    );
    expect(stranger.report).toBe('stranger.yaml: invalid policy test file\n  stranger.yaml:15:9: cases.2.as: "mallory" is not one of people');
  });

  it("npm run policy:test passes on the shipped cases and fails, exit 1, on a wrong one", async () => {
    const ok = await cli("test");
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toContain("  ✓ carol may not request");
    expect(ok.stdout).toMatch(/\n\d+ passed, 0 failed \(policy policy\/latchkey\.yaml\)\n$/);
    const file = path.join(dir, "wrong.yaml");
    writeFileSync(file, wrong);
    const bad = await cli("test", file);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("      ✗  approvers  bob       bob, dave");
    expect(bad.stdout).toContain("\n1 passed, 2 failed (policy policy/latchkey.yaml)\n");
  }, 120_000);
});
