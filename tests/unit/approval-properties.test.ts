import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canTransition, TRANSITIONS } from "@/lib/approvals/state-machine";
import { approvalRefusal, groupsCovered, stageSatisfied, type ApprovalState, type DecisionSnapshot, type StageSnapshot } from "@/lib/policy/evaluate";

const GROUPS = ["a", "b", "c", "d"];
const stageArb = fc
  .record({
    groups: fc.uniqueArray(fc.constantFrom(...GROUPS), { minLength: 1, maxLength: 3 }),
    required: fc.integer({ min: 1, max: 3 }),
    oneFromEachGroup: fc.boolean(),
  })
  .map((s): StageSnapshot => ({ name: "s", ...s, required: s.oneFromEachGroup ? s.groups.length : s.required }));
const personArb = fc.record({ id: fc.constantFrom("p0", "p1", "p2", "p3", "p4", "p5"), groups: fc.uniqueArray(fc.constantFrom(...GROUPS), { minLength: 1, maxLength: 2 }) });

describe("approval rules, property-based", () => {
  it("a stage is never passed with fewer than N distinct approvers, nor without a distinct approver per group", () => {
    fc.assert(
      fc.property(stageArb, fc.array(personArb, { maxLength: 6 }), (stage, people) => {
        // One decision per person, as the engine enforces.
        const approvals: DecisionSnapshot[] = [...new Map(people.map((p) => [p.id, p])).values()].map((p) => ({ approverId: p.id, stage: 0, approverGroups: p.groups, decision: "approve" }));
        if (!stageSatisfied(stage, approvals)) return;
        expect(new Set(approvals.map((a) => a.approverId)).size).toBeGreaterThanOrEqual(stage.required);
        if (stage.oneFromEachGroup) expect(groupsCovered(stage.groups, approvals.map((a) => a.approverGroups))).toBe(stage.groups.length);
      }),
      { numRuns: 500 },
    );
  });

  it("the requester is refused whatever their groups, roles or the request's stages", () => {
    fc.assert(
      fc.property(fc.array(stageArb, { minLength: 1, maxLength: 3 }), personArb, (stages, person) => {
        const state: ApprovalState = { requesterId: person.id, stages, currentStage: 0, decisions: [], parties: {} };
        expect(approvalRefusal(state, { id: person.id, email: "x", groups: person.groups, roles: ["requester", "approver", "admin"] })).toBe("You cannot approve your own request.");
      }),
    );
  });

  it("no state reaches a state outside the transition graph", () => {
    const statuses = Object.keys(TRANSITIONS) as (keyof typeof TRANSITIONS)[];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...statuses), { maxLength: 20 }), (attempts) => {
        let current: (typeof statuses)[number] = "pending";
        for (const next of attempts) if (canTransition(current, next)) current = next;
        expect(statuses).toContain(current);
        for (const next of attempts) expect(canTransition(current, next)).toBe(TRANSITIONS[current].includes(next));
      }),
    );
  });
});
