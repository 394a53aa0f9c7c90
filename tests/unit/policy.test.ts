import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseDuration, formatDuration } from "@/lib/policy/duration";
import {
  approvalRefusal,
  approvalRefusalOf,
  breakGlassRefusal,
  evaluateRequest,
  groupsCovered,
  matchingAutoApproval,
  openGroups,
  requestableTargets,
  rolesForGroups,
  stageSatisfied,
  type ApprovalState,
  type DecisionSnapshot,
  type Principal,
} from "@/lib/policy/evaluate";
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
    const text = minimal(
      `targets:\n  api:\n    title: API\n    service: api\n    environment: prod\nworkflows:\n  temporary-access:\n    targets:\n      api:\n        requesters: [eng]\n        stages: [{ name: S, groups: [leads] }]\n        maxDuration: forever\n`,
    );
    expect(() => parsePolicy(text, "policy/x.yaml")).toThrowError(
      /policy\/x\.yaml: invalid policy[\s\S]*workflows\.temporary-access\.targets\.api\.maxDuration: "forever" is not a duration/,
    );
  });
  it("refuses a rule for a target that is not declared", () => {
    const text = minimal(
      `targets: {}\nworkflows:\n  temporary-access:\n    targets:\n      ghost:\n        requesters: [eng]\n        stages: [{ name: S, groups: [leads] }]\n        maxDuration: 1h\n`,
    );
    expect(() => parsePolicy(text, "p.yaml")).toThrowError(/workflows\.temporary-access\.targets\.ghost: unknown target "ghost"/);
  });
  it("refuses unknown roles, a minimum above the maximum, and broken YAML", () => {
    expect(() => parsePolicy("version: 1\nroles:\n  eng: [superuser]\ntargets: {}\nworkflows: {}\n", "p.yaml")).toThrowError(/roles\.eng\.0/);
    const inverted = minimal(
      `targets:\n  api: { title: API, service: api, environment: prod }\nworkflows:\n  w:\n    targets:\n      api: { requesters: [eng], stages: [{ name: S, groups: [l] }], minDuration: 2h, maxDuration: 1h }\n`,
    );
    expect(() => parsePolicy(inverted, "p.yaml")).toThrowError(/minDuration: is longer than maxDuration/);
    expect(() => parsePolicy("version: 1\nroles: [", "p.yaml")).toThrowError(PolicyError);
  });
});

describe("evaluating a request", () => {
  const alice = principal(["engineering"], "alice");
  const carol = principal(["audit"], "carol");
  const base = { workflowId: "temporary-access", targetId: "payments-api-production", durationSeconds: 3600, accessRole: "read" };

  it("lists only the targets a person may request", () => {
    expect(requestableTargets(shipped, "temporary-access", alice).map((t) => t.targetId)).toEqual([
      "payments-api-staging",
      "payments-api-production",
      "ledger-db-production",
    ]);
    expect(requestableTargets(shipped, "temporary-access", principal(["platform-admins"], "dave")).map((t) => t.targetId)).toEqual([
      "payments-api-staging",
      "payments-api-production",
    ]);
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
    const verdict = evaluateRequest(shipped, { ...base, targetId: "ledger-db-production", who: principal(["platform-admins"], "dave") });
    expect(verdict).toMatchObject({ ok: false, field: "targetId", message: "Only members of engineering may request ledger database (production)." });
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
  const oneStage = (overrides: Partial<ApprovalState> = {}): ApprovalState => ({
    requesterId: "alice",
    stages: [{ name: "Team lead", groups: ["engineering-leads", "platform-admins"], required: 1, oneFromEachGroup: false }],
    currentStage: 0,
    decisions: [],
    parties: {},
    ...overrides,
  });
  it("an approver in the current stage's groups may", () => {
    expect(approvalRefusal(oneStage(), principal(["engineering-leads"], "bob"))).toBeNull();
    expect(approvalRefusal(oneStage(), principal(["platform-admins"], "dave"))).toBeNull();
  });
  it("the requester never may, even as an approver", () => {
    expect(approvalRefusal(oneStage({ requesterId: "bob" }), principal(["engineering-leads"], "bob"))).toBe("You cannot approve your own request.");
  });
  it("an auditor or a requester-only person may not", () => {
    expect(approvalRefusal(oneStage(), principal(["audit"], "carol"))).toBe("Your role does not allow approving requests.");
    expect(approvalRefusal(oneStage(), principal(["engineering"], "erin"))).toBe("Your role does not allow approving requests.");
  });
  it("an approver outside the current stage's groups may not", () => {
    const state = oneStage({ stages: [{ name: "Data owner", groups: ["platform-admins"], required: 1, oneFromEachGroup: false }] });
    expect(approvalRefusal(state, principal(["engineering-leads"], "bob"))).toBe('Only members of platform-admins may approve the stage "Data owner".');
  });
  it("one person decides at most once per request, in any stage", () => {
    const state = oneStage({
      stages: [
        { name: "A", groups: ["platform-admins"], required: 1, oneFromEachGroup: false },
        { name: "B", groups: ["platform-admins"], required: 1, oneFromEachGroup: false },
      ],
      currentStage: 1,
      decisions: [{ approverId: "dave", stage: 0, approverGroups: ["platform-admins"], decision: "approve" }],
    });
    expect(approvalRefusal(state, principal(["platform-admins"], "dave"))).toBe("You have already decided on this request.");
  });
  it("says by its code, not its words, which refusal is a conflict (already decided) and which is not allowed", () => {
    const decided = oneStage({ decisions: [{ approverId: "bob", stage: 0, approverGroups: ["engineering-leads"], decision: "approve" }] });
    expect(approvalRefusalOf(decided, principal(["engineering-leads"], "bob"))).toEqual({
      code: "decided",
      message: "You have already decided on this request.",
    });
    expect(approvalRefusalOf(oneStage({ requesterId: "bob" }), principal(["engineering-leads"], "bob"))).toEqual({
      code: "refused",
      message: "You cannot approve your own request.",
    });
    expect(approvalRefusalOf(oneStage(), principal(["audit"], "carol"))?.code).toBe("refused");
    expect(approvalRefusalOf(oneStage(), principal(["engineering-leads"], "bob"))).toBeNull();
  });
});

describe("stages", () => {
  const d = (approverId: string, approverGroups: string[]): DecisionSnapshot => ({ approverId, stage: 0, approverGroups, decision: "approve" });
  it("N of M needs N distinct people", () => {
    const stage = { name: "x", groups: ["a", "b"], required: 2, oneFromEachGroup: false };
    expect(stageSatisfied(stage, [d("p1", ["a"])])).toBe(false);
    expect(stageSatisfied(stage, [d("p1", ["a"]), d("p2", ["a"])])).toBe(true);
  });
  it("one from each group needs a distinct person per group", () => {
    const stage = { name: "x", groups: ["a", "b"], required: 2, oneFromEachGroup: true };
    expect(stageSatisfied(stage, [d("p1", ["a", "b"])])).toBe(false);
    expect(stageSatisfied(stage, [d("p1", ["a"]), d("p2", ["a"])])).toBe(false);
    expect(stageSatisfied(stage, [d("p1", ["a", "b"]), d("p2", ["a"])])).toBe(true);
    expect(openGroups(stage, [d("p1", ["a"])])).toEqual(["b"]);
    expect(groupsCovered(["a", "b", "c"], [["a", "b"], ["a"], ["c"]])).toBe(3);
  });
  it("a person only in groups already covered is told which group is missing", () => {
    const state: ApprovalState = {
      parties: {},
      requesterId: "alice",
      stages: [{ name: "Both", groups: ["a", "b"], required: 2, oneFromEachGroup: true }],
      currentStage: 0,
      decisions: [d("p1", ["a"])],
    };
    expect(approvalRefusal(state, { id: "p2", email: "p2@x", groups: ["a"], roles: ["approver"] })).toBe('The stage "Both" still needs an approver from b.');
    expect(approvalRefusal(state, { id: "p3", email: "p3@x", groups: ["b"], roles: ["approver"] })).toBeNull();
  });
});

describe("auto-approval and break-glass rules", () => {
  const fixture = loadPolicyFile(path.join(process.cwd(), "tests/fixtures/policy.yaml"));
  const rule = fixture.workflows["temporary-access"]!.targets.sandbox!;
  const who = (groups: string[]): Principal => ({ id: "x", email: "x@x", groups, roles: rolesForGroups(fixture, groups) });
  it("match only when every condition of a rule holds, first rule first", () => {
    expect(matchingAutoApproval(rule, { who: who(["engineering"]), durationSeconds: 3600, accessRole: "read" })?.name).toBe("sandbox-read-under-1h");
    expect(matchingAutoApproval(rule, { who: who(["engineering"]), durationSeconds: 3601, accessRole: "read" })).toBeUndefined();
    expect(matchingAutoApproval(rule, { who: who(["engineering"]), durationSeconds: 600, accessRole: "write" })).toBeUndefined();
    expect(matchingAutoApproval(rule, { who: who(["oncall"]), durationSeconds: 4 * 3600, accessRole: "write" })?.name).toBe("oncall-anything");
  });
  it("break-glass is refused outside its groups, beyond its maximum, or where not enabled", () => {
    const staged = fixture.workflows["temporary-access"]!.targets.staged!;
    expect(breakGlassRefusal(staged, who(["oncall"]), 1800)).toBeNull();
    expect(breakGlassRefusal(staged, who(["engineering"]), 1800)).toBe("Only members of oncall may use break-glass access here.");
    expect(breakGlassRefusal(staged, who(["oncall"]), 1801)).toBe("Break-glass access lasts at most 30m here.");
    expect(breakGlassRefusal(rule, who(["oncall"]), 60)).toBe("Break-glass access is not enabled for this target.");
  });
  it("stage groups must be able to approve", () => {
    const text = `version: 1\nroles:\n  eng: [requester]\ntargets:\n  api: { title: API, service: api, environment: prod }\nworkflows:\n  w:\n    targets:\n      api:\n        requesters: [eng]\n        stages: [{ name: S, groups: [eng] }]\n        maxDuration: 1h\n`;
    expect(() => parsePolicy(text, "p.yaml")).toThrowError(/workflows\.w\.targets\.api\.stages\.0\.groups: eng cannot approve/);
  });
});
