import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canTransition, TRANSITIONS } from "@/lib/approvals/state-machine";
import {
  approvalRefusal,
  groupsCovered,
  stageSatisfied,
  type ApprovalState,
  type DecisionSnapshot,
  type Parties,
  type StageSnapshot,
} from "@/lib/policy/evaluate";

const GROUPS = ["a", "b", "c", "d"];
const stageArb = fc
  .record({
    groups: fc.uniqueArray(fc.constantFrom(...GROUPS), { minLength: 1, maxLength: 3 }),
    required: fc.integer({ min: 1, max: 3 }),
    oneFromEachGroup: fc.boolean(),
  })
  .map((s): StageSnapshot => ({ name: "s", ...s, required: s.oneFromEachGroup ? s.groups.length : s.required }));
const personArb = fc.record({
  id: fc.constantFrom("p0", "p1", "p2", "p3", "p4", "p5"),
  groups: fc.uniqueArray(fc.constantFrom(...GROUPS), { minLength: 1, maxLength: 2 }),
});

describe("approval rules, property-based", () => {
  it("a stage is never passed with fewer than N distinct approvers, nor without a distinct approver per group", () => {
    fc.assert(
      fc.property(stageArb, fc.array(personArb, { maxLength: 6 }), (stage, people) => {
        // One decision per person, as the engine enforces.
        const approvals: DecisionSnapshot[] = [...new Map(people.map((p) => [p.id, p])).values()].map((p) => ({
          approverId: p.id,
          stage: 0,
          approverGroups: p.groups,
          decision: "approve",
        }));
        if (!stageSatisfied(stage, approvals)) return;
        expect(new Set(approvals.map((a) => a.approverId)).size).toBeGreaterThanOrEqual(stage.required);
        if (stage.oneFromEachGroup)
          expect(
            groupsCovered(
              stage.groups,
              approvals.map((a) => a.approverGroups),
            ),
          ).toBe(stage.groups.length);
      }),
      { numRuns: 500 },
    );
  });

  it("the requester is refused whatever their groups, roles or the request's stages", () => {
    fc.assert(
      fc.property(fc.array(stageArb, { minLength: 1, maxLength: 3 }), personArb, (stages, person) => {
        const state: ApprovalState = { requesterId: person.id, stages, currentStage: 0, decisions: [], parties: {} };
        expect(approvalRefusal(state, { id: person.id, email: "x", groups: person.groups, roles: ["requester", "approver", "admin"] })).toBe(
          "You cannot approve your own request.",
        );
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

/** Random owners: service identities s0..s2 each owned by one to three of the people p0..p2. */
const PEOPLE = ["p0", "p1", "p2"];
const SERVICES = ["s0", "s1", "s2"];
const IDS = [...PEOPLE, ...SERVICES];
const partiesArb = fc.tuple(...SERVICES.map(() => fc.uniqueArray(fc.constantFrom(...PEOPLE), { minLength: 1, maxLength: 3 }))).map((owners): Parties => {
  const parties: Record<string, string[]> = Object.fromEntries(PEOPLE.map((p) => [p, [p]]));
  SERVICES.forEach((s, i) => (parties[s] = [s, ...owners[i]!]));
  return parties;
});
const decisionsArb = fc
  .array(fc.record({ id: fc.constantFrom(...IDS), groups: fc.uniqueArray(fc.constantFrom(...GROUPS), { minLength: 1, maxLength: 2 }) }), { maxLength: 6 })
  .map((ds): DecisionSnapshot[] =>
    [...new Map(ds.map((d) => [d.id, d])).values()].map((d) => ({ approverId: d.id, stage: 0, approverGroups: d.groups, decision: "approve" })),
  );

/** "One party", written again from the owners map so the test does not trust the code under test. */
const oneParty = (parties: Parties, a: string, b: string) => (parties[a] ?? [a]).some((x) => (parties[b] ?? [b]).includes(x));

/** Whether some `size` of these approvals are pairwise of different parties and none of the requester's (brute force). */
function distinctParties(approvals: DecisionSnapshot[], parties: Parties, requester: string, size: number, groupsToCover?: string[]): boolean {
  const eligible = approvals.filter((a) => !oneParty(parties, a.approverId, requester));
  const pick = (from: number, chosen: DecisionSnapshot[]): boolean => {
    if (chosen.length === size)
      return (
        !groupsToCover ||
        groupsCovered(
          groupsToCover,
          chosen.map((c) => c.approverGroups),
        ) === groupsToCover.length
      );
    for (let i = from; i < eligible.length; i++) {
      if (chosen.some((c) => oneParty(parties, c.approverId, eligible[i]!.approverId))) continue;
      if (pick(i + 1, [...chosen, eligible[i]!])) return true;
    }
    return false;
  };
  return pick(0, []);
}

describe("separation of duties, property-based over random owners", () => {
  it("a stage passes only on approvals by enough different parties, none of them the requester's", () => {
    fc.assert(
      fc.property(stageArb, partiesArb, decisionsArb, fc.constantFrom(...IDS), (stage, parties, approvals, requester) => {
        if (!stageSatisfied(stage, approvals, parties, requester)) return;
        expect(approvals.some((a) => !oneParty(parties, a.approverId, requester))).toBe(true);
        if (stage.oneFromEachGroup) expect(distinctParties(approvals, parties, requester, stage.groups.length, stage.groups)).toBe(true);
        else expect(distinctParties(approvals, parties, requester, stage.required)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("nobody of the requester's party may approve, and a party that decided may not decide again", () => {
    fc.assert(
      fc.property(
        fc.array(stageArb, { minLength: 1, maxLength: 2 }),
        partiesArb,
        decisionsArb,
        fc.constantFrom(...IDS),
        fc.constantFrom(...IDS),
        (stages, parties, decisions, requester, who) => {
          const state: ApprovalState = {
            requesterId: requester,
            stages,
            currentStage: 0,
            decisions: decisions.filter((d) => !oneParty(parties, d.approverId, requester)),
            parties,
          };
          const refusal = approvalRefusal(state, { id: who, email: `${who}@x`, groups: GROUPS, roles: ["requester", "approver", "admin"] });
          if (oneParty(parties, requester, who)) expect(refusal).not.toBeNull();
          if (state.decisions.some((d) => oneParty(parties, d.approverId, who))) expect(refusal).not.toBeNull();
        },
      ),
      { numRuns: 1000 },
    );
  });
});
