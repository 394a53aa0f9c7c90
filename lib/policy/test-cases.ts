import { z } from "zod";
import { configNouns } from "../config/nouns";
import { checkConfigText } from "../config/validate-file";
import { parseDuration } from "./duration";
import {
  approvalRefusal,
  breakGlassRefusal,
  evaluateRequest,
  matchingAutoApproval,
  rolesForGroups,
  stageSatisfied,
  stagesOf,
  type ApprovalState,
  type Principal,
} from "./evaluate";
import type { Policy } from "./schema";

/**
 * Policy tests (policy/tests/*.yaml): "alice asks for X → pending, stage 1 approvable by bob
 * and dave". Each case runs the same pure decisions the engine makes (may request,
 * auto-approval, break-glass, each approval in turn), so a policy change that moves who may
 * do what fails a case before it reaches production, as `opa test` does for Rego.
 */
const RESULTS = ["pending", "approved", "auto-approved", "break-glass", "refused"] as const;
export type CaseResult = (typeof RESULTS)[number];

const person = z.string().min(1);
const durationText = z.string().refine((t) => parseDuration(t) !== undefined, { message: "is not a duration (use e.g. 30m, 8h, 1d)" });

const requestSchema = z
  .strictObject({
    workflow: z.string().min(1).describe("Workflow id, as under workflows in the policy."),
    target: z.string().min(1).describe("Target id."),
    role: z.string().min(1).optional().describe("Access role asked for (e.g. read)."),
    duration: durationText.optional().describe("Duration asked for (e.g. 1h); leave out for one-off workflows."),
    breakGlass: z.boolean().default(false).describe("Open an emergency grant instead of asking."),
  })
  .register(configNouns, { noun: "a case's request" });

const expectSchema = z
  .strictObject({
    result: z.enum(RESULTS).describe("What happens to the request."),
    rule: z.string().optional().describe("The auto-approval rule that approves it."),
    message: z.string().optional().describe("Why it is refused, word for word."),
    stage: z.number().int().min(1).optional().describe("The stage it waits at, counting from 1."),
    approvers: z.array(person).optional().describe("The people who may approve that stage now (any order)."),
  })
  .register(configNouns, { noun: "a case's expectation" });

const caseSchema = z
  .strictObject({
    name: z.string().min(1).describe("What the case shows, in words."),
    as: person.describe("Who asks: one of people."),
    request: requestSchema,
    approvals: z.array(person).default([]).describe("People who approve, in order."),
    expect: expectSchema,
  })
  .register(configNouns, { noun: "a policy test case" });

export const policyTestFileSchema = z
  .strictObject({
    people: z.record(person, z.array(z.string().min(1))).describe("Each person's IdP groups."),
    cases: z.array(caseSchema).min(1),
  })
  .register(configNouns, { noun: "a policy test file" })
  .superRefine((file, ctx) => {
    const known = (name: string, path: (string | number)[]) => {
      if (!file.people[name]) ctx.addIssue({ code: "custom", path, message: `"${name}" is not one of people` });
    };
    file.cases.forEach((c, i) => {
      known(c.as, ["cases", i, "as"]);
      c.approvals.forEach((name, j) => known(name, ["cases", i, "approvals", j]));
      c.expect.approvers?.forEach((name, j) => known(name, ["cases", i, "expect", "approvers", j]));
    });
  });

export type PolicyTestFile = z.infer<typeof policyTestFileSchema>;
export type PolicyCase = PolicyTestFile["cases"][number];
export interface Outcome {
  result: CaseResult;
  rule?: string;
  message?: string;
  stage?: number;
  approvers?: string[];
}

export function parsePolicyTests(text: string, file: string): { ok: true; data: PolicyTestFile } | { ok: false; problems: string[] } {
  return checkConfigText(text, file, policyTestFileSchema);
}

/** What the policy does with this case's request and approvals. */
export function runCase(policy: Policy, people: PolicyTestFile["people"], c: PolicyCase): Outcome {
  const principal = (name: string): Principal => ({ id: name, email: name, groups: people[name]!, roles: rolesForGroups(policy, people[name]!) });
  const who = principal(c.as);
  const durationSeconds = c.request.duration === undefined ? undefined : parseDuration(c.request.duration);
  const verdict = evaluateRequest(policy, { workflowId: c.request.workflow, targetId: c.request.target, who, durationSeconds, accessRole: c.request.role });
  if (!verdict.ok) return { result: "refused", message: verdict.message };
  if (c.request.breakGlass) {
    const refusal = breakGlassRefusal(verdict.rule, who, durationSeconds);
    return refusal ? { result: "refused", message: refusal } : { result: "break-glass" };
  }
  const auto = matchingAutoApproval(verdict.rule, { who, durationSeconds, accessRole: c.request.role });
  if (auto) return { result: "auto-approved", rule: auto.name };
  const state: ApprovalState = { requesterId: c.as, stages: stagesOf(verdict.rule), currentStage: 0, decisions: [], parties: {} };
  for (const name of c.approvals) {
    const approver = principal(name);
    const refusal = approvalRefusal(state, approver);
    if (refusal) return { result: "refused", message: refusal, stage: state.currentStage + 1 };
    state.decisions.push({ approverId: approver.id, stage: state.currentStage, approverGroups: approver.groups, decision: "approve" });
    const inStage = state.decisions.filter((d) => d.stage === state.currentStage);
    if (stageSatisfied(state.stages[state.currentStage]!, inStage, state.parties, state.requesterId)) state.currentStage += 1;
    if (state.currentStage === state.stages.length) return { result: "approved" };
  }
  const approvers = Object.keys(people).filter((name) => approvalRefusal(state, principal(name)) === null);
  return { result: "pending", stage: state.currentStage + 1, approvers };
}

const show = (value: unknown): string => (value === undefined ? "-" : Array.isArray(value) ? value.join(", ") || "(nobody)" : String(value));
const same = (a: unknown, b: unknown) => (Array.isArray(a) && Array.isArray(b) ? [...a].sort().join("\n") === [...b].sort().join("\n") : a === b);

/** Fields the case expects that the outcome does not meet; the result always counts. */
export function mismatches(expected: PolicyCase["expect"], actual: Outcome): string[] {
  return (Object.keys(expected) as (keyof Outcome)[]).filter((key) => expected[key] !== undefined && !same(expected[key], actual[key]));
}

/** Expected and actual side by side, one row per field, differing rows marked. */
export function sideBySide(expected: PolicyCase["expect"], actual: Outcome): string {
  const keys = (["result", "rule", "message", "stage", "approvers"] as const).filter((k) => expected[k] !== undefined || actual[k] !== undefined);
  const rows = keys.map((k) => [
    expected[k] !== undefined && !same(expected[k], actual[k]) ? "✗" : " ",
    k,
    expected[k] === undefined ? "(any)" : show(expected[k]),
    show(actual[k]),
  ]);
  const head = [" ", "field", "expected", "actual"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export interface TestRun {
  passed: number;
  failed: number;
  /** One line per case; a failing case is followed by its expected and actual side by side. */
  report: string;
}

/** Runs every case of one test file; a file that is not a valid test file is an error, not a pass. */
export function runPolicyTests(policy: Policy, text: string, file: string): TestRun {
  const parsed = parsePolicyTests(text, file);
  if (!parsed.ok) return { passed: 0, failed: 1, report: `${file}: invalid policy test file\n${parsed.problems.map((p) => `  ${p}`).join("\n")}` };
  const lines = [file];
  let passed = 0;
  for (const c of parsed.data.cases) {
    const actual = runCase(policy, parsed.data.people, c);
    if (mismatches(c.expect, actual).length === 0) {
      passed += 1;
      lines.push(`  ✓ ${c.name}`);
    } else {
      lines.push(
        `  ✗ ${c.name}`,
        ...sideBySide(c.expect, actual)
          .split("\n")
          .map((l) => `      ${l}`),
      );
    }
  }
  return { passed, failed: parsed.data.cases.length - passed, report: lines.join("\n") };
}
