import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadPolicyFile } from "@/lib/policy/load";
import { availabilityWarnings, explain, policyTable } from "@/lib/policy/report";
import { unavailability, unavailableMessage } from "@/lib/workflows/availability";

const shipped = loadPolicyFile(path.join(process.cwd(), "policy/latchkey.yaml"));
const cli = (...args: string[]) =>
  spawnSync(path.join(process.cwd(), "node_modules/.bin/tsx"), ["scripts/policy.ts", ...args], { encoding: "utf8", env: { ...process.env, DATABASE_URL: "" } });

describe("policy:check", () => {
  it("prints who may request what and who approves it, one row per workflow and target", () => {
    const text = policyTable(shipped);
    expect(text).toContain("| engineering-leads | requester, approver ");
    expect(text).toMatch(
      /\| temporary-access \| ledger-db-production +\| engineering +\| 1\. Team lead: 1 of engineering-leads; 2\. Data owner: 1 of platform-admins \|/,
    );
    expect(text).toMatch(/\| restart-job +\| nightly-settlement +\| engineering-leads, platform-admins .*\| one-off +\| 4h +\|/);
    expect(text).toMatch(/payments-api-staging .*\| staging-read-under-1h \|/);
  });

  it("the command exits 0 on the shipped policy and 1 with the file and path on a broken one", () => {
    const ok = cli("check");
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain("policy/latchkey.yaml: valid");
    const dir = mkdtempSync(path.join(os.tmpdir(), "policy-"));
    const broken = path.join(dir, "broken.yaml");
    writeFileSync(
      broken,
      "version: 1\nroles:\n  eng: [requester]\ntargets: {}\nworkflows:\n  w:\n    targets:\n      ghost: { requesters: [eng], stages: [], maxDuration: 1h }\n",
    );
    const bad = cli("check", "--file", broken);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`${broken}: invalid policy`);
    expect(bad.stderr).toContain(`${broken}:8:43: workflows.w.targets.ghost.stages: give at least one approval stage`);
    expect(bad.stderr).toContain(`${broken}:8:14: workflows.w.targets.ghost: unknown target "ghost"`);
  }, 120_000);
});

// Each case spawns the CLI (tsx), which takes seconds on a loaded machine.
describe("policy:check and integrations", { timeout: 120_000 }, () => {
  const UNSET = {
    LATCHKEY_HAPROXY_SOCKET: "",
    LATCHKEY_HAPROXY_MAP: "",
    LATCHKEY_DB_LEDGER_URL: "",
    LATCHKEY_AIRFLOW_URL: "",
    LATCHKEY_AIRFLOW_USER: "",
    LATCHKEY_AIRFLOW_PASSWORD: "",
  };
  const run = (env: Record<string, string>) =>
    spawnSync(path.join(process.cwd(), "node_modules/.bin/tsx"), ["scripts/policy.ts", "check"], {
      encoding: "utf8",
      env: { ...process.env, DATABASE_URL: "", ...UNSET, ...env },
    });

  it("warns about each workflow target whose integration is not configured, naming the variables, and still exits 0", () => {
    const out = run({});
    expect(out.status).toBe(0);
    expect(out.stderr).toContain(
      "warning: trigger-dag on nightly-settlement is unavailable: Airflow is not configured on this portal yet. Set LATCHKEY_AIRFLOW_URL, LATCHKEY_AIRFLOW_USER, LATCHKEY_AIRFLOW_PASSWORD.",
    );
    expect(out.stderr).toContain("warning: database-access on ledger-db is unavailable");
    expect(out.stderr).toContain("Set LATCHKEY_HAPROXY_SOCKET, LATCHKEY_HAPROXY_MAP.");
    expect(out.stderr).not.toContain("temporary-access");
  });

  it("stops warning once the variables are set", () => {
    const airflowSet = availabilityWarnings(shipped, {
      LATCHKEY_AIRFLOW_URL: "http://airflow.internal",
      LATCHKEY_AIRFLOW_USER: "latchkey",
      LATCHKEY_AIRFLOW_PASSWORD: "x",
    });
    expect(airflowSet.join("\n")).not.toContain("nightly-settlement");
    expect(airflowSet.join("\n")).toContain("database-access on ledger-db");
    const warnings = availabilityWarnings(shipped, {
      LATCHKEY_HAPROXY_SOCKET: "s",
      LATCHKEY_HAPROXY_MAP: "m",
      LATCHKEY_DB_LEDGER_URL: "u",
      LATCHKEY_AIRFLOW_URL: "a",
      LATCHKEY_AIRFLOW_USER: "b",
      LATCHKEY_AIRFLOW_PASSWORD: "c",
    });
    expect(warnings).toEqual([]);
  });

  it("a workflow on a target without its integration in the policy is unavailable whatever the environment", () => {
    expect(unavailability("restart-job", { title: "no airflow", service: "x", environment: "prod" } as never, {})).toEqual({
      reason: "no airflow has no Airflow connection in the policy.",
      missing: [],
    });
    expect(unavailability("temporary-access", { title: "t", service: "x", environment: "prod" } as never, {})).toBeNull();
    expect(unavailableMessage({ reason: "Airflow is not configured on this portal yet.", missing: ["A"] }, true)).toBe(
      "Airflow is not configured on this portal yet. Set A and restart the portal.",
    );
    expect(unavailableMessage({ reason: "Airflow is not configured on this portal yet.", missing: ["A"] }, false)).not.toContain("A and");
  });
});

describe("policy:explain", () => {
  const known = [
    { email: "bob@example.com", groups: ["engineering-leads"] },
    { email: "dave@example.com", groups: ["platform-admins"] },
    { email: "carol@example.com", groups: ["audit"] },
  ];
  it("says yes, lists the stages in order and who could approve each", () => {
    const { allowed, text } = explain(shipped, {
      email: "alice@example.com",
      groups: ["engineering"],
      workflowId: "temporary-access",
      targetId: "ledger-db-production",
      knownApprovers: known,
    });
    expect(allowed).toBe(true);
    expect(text.split("\n")).toEqual([
      "alice@example.com: groups engineering; roles requester",
      "YES: may request temporary-access on ledger database (production) as read, for 15m to 1h.",
      "Approval, in order:",
      "  1. Team lead: 1 of engineering-leads",
      "     can approve: bob@example.com",
      "  2. Data owner: 1 of platform-admins",
      "     can approve: dave@example.com",
    ]);
  });
  it("says no, and why", () => {
    expect(explain(shipped, { email: "carol@example.com", groups: ["audit"], workflowId: "temporary-access", targetId: "payments-api-staging" })).toEqual({
      allowed: false,
      text: "carol@example.com: groups audit; roles auditor\nNO: Your groups do not allow you to request access.",
    });
    expect(
      explain(shipped, { email: "dave@example.com", groups: ["platform-admins"], workflowId: "temporary-access", targetId: "ledger-db-production" }).text,
    ).toContain("NO: Only members of engineering may request ledger database (production).");
  });
  it("the command answers for a demo user and exits 1 when the answer is no", () => {
    const yes = cli("explain", "--user", "bob@example.com", "--workflow", "temporary-access", "--target", "payments-api-production");
    expect(yes.status).toBe(0);
    expect(yes.stdout).toContain("Break-glass: not for this person.");
    const no = cli("explain", "--user", "carol@example.com", "--workflow", "temporary-access", "--target", "payments-api-production");
    expect(no.status).toBe(1);
    expect(no.stdout).toContain("NO:");
  }, 120_000);
});
