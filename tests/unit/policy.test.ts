import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseDuration, formatDuration } from "@/lib/policy/duration";
import { approvalRefusal, evaluateRequest, requestableTargets, rolesForGroups, type Principal } from "@/lib/policy/evaluate";
import { loadPolicyFile, parsePolicy, PolicyError } from "@/lib/policy/load";

const shipped = loadPolicyFile(path.join(process.cwd(), "policy/latchkey.yaml"));

function principal(groups: string[], id = "u1"): Principal {
  return { id, email: `${id}@example.com`, groups, roles: rolesForGroups(shipped, groups) };
}

const minimal = (body: string) => `version: 1\nroles:\n  eng: [requester]\n${body}`;

describe("durations", () => {
  it("parses the units the policy uses", () => {
    expect(parseDuration("15m")).toBe(900);
    expect(parseDuration("8h")).toBe(28_800);
    expect(parseDuration("1d")).toBe(86_400);
    expect(parseDuration("1h30m")).toBe(5_400);
    expect(parseDuration("90s")).toBe(90);
  });
  it("refuses what is not a duration", () => {
    for (const bad of ["", "0m", "10", "h", "1w", "-5m", "5 m"]) expect(parseDuration(bad)).toBeUndefined();
  });
  it("formats for people", () => {
    expect(formatDuration(5_400)).toBe("1h 30m");
    expect(formatDuration(0)).toBe("0s");
  });
});

describe("policy file", () => {
  it("the shipped policy is valid and maps the demo groups", () => {
    expect(rolesForGroups(shipped, ["engineering"])).toEqual(["requester"]);
    expect(rolesForGroups(shipped, ["engineering-leads"])).toEqual(["requester", "approver"]);
    expect(rolesForGroups(shipped, ["audit"])).toEqual(["auditor"]);
    expect(rolesForGroups(shipped, ["platform-admins"])).toEqual(["requester", "approver", "auditor", "admin"]);
  });
  it("unknown groups grant nothing and roles are not duplicated", () => {
    expect(rolesForGroups(shipped, ["contractors"])).toEqual([]);
    expect(rolesForGroups(shipped, ["engineering", "engineering-leads"])).toEqual(["requester", "approver"]);
  });
  it("names the file and the path of a mistake", () => {
    const text = minimal(`targets:\n  api:\n    title: API\n    service: api\n    environment: prod\nworkflows:\n  temporary-access:\n    targets:\n      api:\n        requesters: [eng]\n        approval: { groups: [leads] }\n        maxDuration: forever\n`);
    expect(() => parsePolicy(text, "policy/x.yaml")).toThrowError(/policy\/x\.yaml: invalid policy[\s\S]*workflows\.temporary-access\.targets\.api\.maxDuration: "forever" is not a duration/);
  });
  it("refuses a rule for a target that is not declared", () => {
    const text = minimal(`targets: {}\nworkflows:\n  temporary-access:\n    targets:\n      ghost:\n        requesters: [eng]\n        approval: { groups: [leads] }\n        maxDuration: 1h\n`);
    expect(() => parsePolicy(text, "p.yaml")).toThrowError(/workflows\.temporary-access\.targets\.ghost: unknown target "ghost"/);
  });
  it("refuses unknown roles, a minimum above the maximum, and broken YAML", () => {
    expect(() => parsePolicy("version: 1\nroles:\n  eng: [superuser]\ntargets: {}\nworkflows: {}\n", "p.yaml")).toThrowError(/roles\.eng\.0/);
    const inverted = minimal(`targets:\n  api: { title: API, service: api, environment: prod }\nworkflows:\n  w:\n    targets:\n      api: { requesters: [eng], approval: { groups: [l] }, minDuration: 2h, maxDuration: 1h }\n`);
    expect(() => parsePolicy(inverted, "p.yaml")).toThrowError(/minDuration: is longer than maxDuration/);
    expect(() => parsePolicy("version: 1\nroles: [", "p.yaml")).toThrowError(PolicyError);
  });
});

describe("evaluating a request", () => {
  const alice = principal(["engineering"], "alice");
  const carol = principal(["audit"], "carol");
  const base = { workflowId: "temporary-access", targetId: "payments-api-production", durationSeconds: 3600, accessRole: "read" };

  it("lists only the targets a person may request", () => {
    expect(requestableTargets(shipped, "temporary-access", alice).map((t) => t.targetId)).toEqual(["payments-api-staging", "payments-api-production"]);
    expect(requestableTargets(shipped, "temporary-access", carol)).toEqual([]);
    expect(requestableTargets(shipped, "no-such-workflow", alice)).toEqual([]);
  });
  it("allows a request within the policy", () => {
    const verdict = evaluateRequest(shipped, { ...base, who: alice });
    expect(verdict.ok).toBe(true);
  });
  it("refuses someone without the requester role", () => {
    expect(evaluateRequest(shipped, { ...base, who: carol })).toEqual({ ok: false, message: "Your groups do not allow you to request access." });
  });
  it("refuses a target outside the person's groups", () => {
    const verdict = evaluateRequest(shipped, { ...base, targetId: "ledger-db-production", who: alice });
    expect(verdict).toMatchObject({ ok: false, field: "targetId" });
  });
  it("refuses an unknown target and a role the target does not offer", () => {
    expect(evaluateRequest(shipped, { ...base, targetId: "nope", who: alice })).toMatchObject({ ok: false, field: "targetId" });
    expect(evaluateRequest(shipped, { ...base, accessRole: "admin", who: alice })).toMatchObject({ ok: false, field: "role" });
  });
  it("enforces the duration bounds of the target", () => {
    expect(evaluateRequest(shipped, { ...base, durationSeconds: 2 * 3600, who: alice }).ok).toBe(true);
    expect(evaluateRequest(shipped, { ...base, durationSeconds: 2 * 3600 + 60, who: alice })).toMatchObject({
      ok: false,
      field: "durationMinutes",
      message: "Duration must be between 15m and 2h for payments-api (production).",
    });
    expect(evaluateRequest(shipped, { ...base, durationSeconds: 600, who: alice })).toMatchObject({ ok: false, field: "durationMinutes" });
  });
});

describe("who may approve", () => {
  const request = { requesterId: "alice", approverGroups: ["engineering-leads", "platform-admins"], approvalsNeeded: 1 };
  it("an approver in an approver group may", () => {
    expect(approvalRefusal(request, principal(["engineering-leads"], "bob"))).toBeNull();
    expect(approvalRefusal(request, principal(["platform-admins"], "dave"))).toBeNull();
  });
  it("the requester never may, even as an approver", () => {
    expect(approvalRefusal({ ...request, requesterId: "bob" }, principal(["engineering-leads"], "bob"))).toBe("You cannot approve your own request.");
  });
  it("an auditor or a requester-only person may not", () => {
    expect(approvalRefusal(request, principal(["audit"], "carol"))).toBe("Your role does not allow approving requests.");
    expect(approvalRefusal(request, principal(["engineering"], "erin"))).toBe("Your role does not allow approving requests.");
  });
  it("an approver outside the request's groups may not", () => {
    expect(approvalRefusal({ ...request, approverGroups: ["platform-admins"] }, principal(["engineering-leads"], "bob"))).toBe("Only members of platform-admins may approve this request.");
  });
});
