import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { TRANSITIONS } from "@/lib/approvals/state-machine";
import type { Principal, StageSnapshot } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let people: Principal[];

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  people = [
    await fx.user("req@example.com", ["engineering", "engineering-leads"]),
    await fx.user("lead1@example.com", ["engineering-leads"]),
    await fx.user("lead2@example.com", ["engineering-leads", "security"]),
    await fx.user("admin1@example.com", ["platform-admins"]),
    await fx.user("both@example.com", ["platform-admins", "security"]),
    await fx.user("sec@example.com", ["security"]),
    await fx.user("aud@example.com", ["audit"]),
  ];
});
afterAll(() => fx?.close());

const actionArb = fc.record({
  who: fc.integer({ min: 0, max: 6 }),
  kind: fc.constantFrom("approve", "approve", "approve", "reject", "cancel", "revoke", "expire"),
});

describe("the engine under random actions by random people (real Postgres)", () => {
  it("never lets a requester approve, never passes a stage short of approvers, never leaves the graph", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("staged", "two-person"), fc.array(actionArb, { minLength: 1, maxLength: 8 }), async (targetId, actions) => {
        const requester = people[0]!;
        const request = await engine.createRequest(requester, "temporary-access", validInput({ targetId, durationMinutes: 30 }));
        for (const action of actions) {
          const who = people[action.who]!;
          const run = {
            approve: () => engine.decide(who, { requestId: request.id, decision: "approve", comment: "" }),
            reject: () => engine.decide(who, { requestId: request.id, decision: "reject", comment: "no" }),
            cancel: () => engine.cancelRequest(who, request.id),
            revoke: () => engine.revokeGrant(who, { requestId: request.id, reason: "" }),
            expire: () => engine.expireGrant(request.id, new Date(Date.now() + 86_400_000)),
          }[action.kind];
          await run().catch((error: { code?: string }) => {
            // Refusals are expected; anything else is a bug.
            if (!["forbidden", "conflict", "invalid"].includes(error.code ?? "")) throw error;
          });
        }
        const row = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id }, include: { decisions: true } });
        expect(row.decisions.some((d) => d.approverId === requester.id)).toBe(false);
        expect(new Set(row.decisions.map((d) => d.approverId)).size).toBe(row.decisions.length);
        const stages = row.stages as unknown as StageSnapshot[];
        const reachedApproval = ["approved", "executing", "active", "expired", "revoked"].includes(row.status);
        stages.forEach((stage, index) => {
          const passed = index < row.currentStage || (index === row.currentStage && reachedApproval);
          if (!passed) return;
          const approvers = row.decisions.filter((d) => d.stage === index && d.decision === "approve");
          expect(approvers.length).toBeGreaterThanOrEqual(stage.required);
          if (stage.oneFromEachGroup) for (const g of stage.groups) expect(approvers.some((a) => a.approverGroups.includes(g))).toBe(true);
        });
        const events = await fx.db.auditEvent.findMany({ where: { requestId: request.id, toStatus: { not: null } }, orderBy: { id: "asc" } });
        let status: string | null = null;
        for (const e of events) {
          if (e.fromStatus !== e.toStatus) {
            expect(e.fromStatus).toBe(status);
            if (e.fromStatus) expect(TRANSITIONS[e.fromStatus]).toContain(e.toStatus);
          }
          status = e.toStatus;
        }
        expect(status).toBe(row.status);
        expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(reachedApproval ? 1 : 0);
      }),
      { numRuns: 40 },
    );
  });
});

/** Owners by service identity id, as the test made them; the oracle for "one party", independent of the code under test. */
type Owners = Map<string, string[]>;
const controllers = (owners: Owners, id: string) => [id, ...(owners.get(id) ?? [])];
const oneParty = (owners: Owners, a: string, b: string) => controllers(owners, a).some((x) => controllers(owners, b).includes(x));

/** Largest number of groups covered by distinct approvers (brute force, for small sizes). */
function covers(groups: string[], chosen: string[][]): boolean {
  const assign = (i: number, used: Set<number>): boolean =>
    i === groups.length || chosen.some((g, j) => !used.has(j) && g.includes(groups[i]!) && assign(i + 1, new Set([...used, j])));
  return assign(0, new Set());
}

/** Whether `size` approvals exist, pairwise of different parties and none of the requester's, covering `cover` when given (brute force). */
function byDistinctParties(
  approvals: { approverId: string; approverGroups: string[] }[],
  owners: Owners,
  requester: string,
  size: number,
  cover?: string[],
): boolean {
  const eligible = approvals.filter((a) => !oneParty(owners, a.approverId, requester));
  const pick = (from: number, chosen: typeof eligible): boolean => {
    if (chosen.length === size)
      return (
        !cover ||
        covers(
          cover,
          chosen.map((c) => c.approverGroups),
        )
      );
    for (let i = from; i < eligible.length; i++) {
      if (chosen.some((c) => oneParty(owners, c.approverId, eligible[i]!.approverId))) continue;
      if (pick(i + 1, [...chosen, eligible[i]!])) return true;
    }
    return false;
  };
  return pick(0, []);
}

describe("separation of duties under random identities, owners, groups and stages (real Postgres)", () => {
  const GROUPS = ["engineering-leads", "platform-admins", "security", "quorum"];
  const groupsArb = fc.uniqueArray(fc.constantFrom(...GROUPS), { maxLength: 2 });
  const stageArb = fc
    .record({
      groups: fc.uniqueArray(fc.constantFrom(...GROUPS), { minLength: 1, maxLength: 2 }),
      required: fc.integer({ min: 1, max: 2 }),
      oneFromEachGroup: fc.boolean(),
    })
    .map((s): StageSnapshot => ({ name: "random stage", ...s, required: s.oneFromEachGroup ? s.groups.length : s.required }));
  const worldArb = fc.record({
    people: fc.array(groupsArb, { minLength: 2, maxLength: 4 }),
    services: fc.array(fc.record({ groups: groupsArb, owners: fc.uniqueArray(fc.nat({ max: 3 }), { minLength: 1, maxLength: 2 }) }), {
      minLength: 1,
      maxLength: 3,
    }),
    requester: fc.nat({ max: 6 }),
    stages: fc.array(stageArb, { minLength: 1, maxLength: 2 }),
    actions: fc.array(fc.record({ who: fc.nat({ max: 6 }), decision: fc.constantFrom("approve", "approve", "approve", "reject") }), {
      minLength: 1,
      maxLength: 10,
    }),
  });
  let run = 0;

  it("no grant becomes active without approval from a party other than the requester's, and no party decides twice", async () => {
    const { rolesForGroups } = await import("@/lib/policy/evaluate");
    const { policy } = await import("@/lib/policy/current");
    await fc.assert(
      fc.asyncProperty(worldArb, async (world) => {
        run += 1;
        // Everyone may request (engineering); their other groups decide what they may approve.
        const principal = (id: string, email: string, groups: string[], service: boolean): Principal => ({
          id,
          email,
          groups,
          roles: rolesForGroups(policy(), groups),
          ...(service
            ? { via: { kind: "service_token" as const, tokenId: `t-${id}`, scopes: ["requests:write", "approvals:write"] }, requestOnly: false }
            : {}),
        });
        const people: Principal[] = [];
        for (const [i, groups] of world.people.entries()) {
          const email = `p${i}-run${run}@example.com`;
          const row = await fx.db.user.create({
            data: { email, groups: ["engineering", ...groups], roles: rolesForGroups(policy(), ["engineering", ...groups]) },
          });
          people.push(principal(row.id, email, ["engineering", ...groups], false));
        }
        const services: Principal[] = [];
        const owned: Owners = new Map();
        for (const [i, s] of world.services.entries()) {
          const email = `s${i}-run${run}@service.latchkey`;
          const groups = ["engineering", ...s.groups];
          const row = await fx.db.user.create({
            data: { email, kind: "service", groups, roles: rolesForGroups(policy(), groups), createdById: people[s.owners[0]! % people.length]!.id },
          });
          const owners = [...new Set(s.owners.map((o) => people[o % people.length]!.id))];
          await fx.db.serviceOwner.createMany({ data: owners.map((ownerId) => ({ serviceId: row.id, ownerId, addedById: ownerId })) });
          owned.set(row.id, owners);
          services.push(principal(row.id, email, groups, true));
        }
        const everyone = [...people, ...services];
        const requester = everyone[world.requester % everyone.length]!;
        const request = await engine.createRequest(
          requester,
          "temporary-access",
          validInput({ targetId: "payments-api-staging", role: "write", durationMinutes: 30 }),
        );
        // The stages a request carries are the ones it was made with: here, random ones.
        await fx.db.accessRequest.update({
          where: { id: request.id },
          data: { stages: world.stages as unknown as object[], currentStageGroups: world.stages[0]!.groups },
        });
        for (const action of world.actions) {
          const who = everyone[action.who % everyone.length]!;
          await engine
            .decide(who, { requestId: request.id, decision: action.decision as "approve" | "reject", comment: "random" })
            .catch((error: { code?: string }) => {
              if (!["forbidden", "conflict", "invalid"].includes(error.code ?? "")) throw error;
            });
        }
        const row = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id }, include: { decisions: true } });
        expect(row.decisions.filter((d) => oneParty(owned, d.approverId, requester.id))).toEqual([]);
        for (const [i, a] of row.decisions.entries())
          for (const b of row.decisions.slice(i + 1)) expect(oneParty(owned, a.approverId, b.approverId)).toBe(false);
        const reachedApproval = ["approved", "executing", "active", "expired", "revoked"].includes(row.status);
        if (reachedApproval) expect(row.decisions.some((d) => d.decision === "approve" && !oneParty(owned, d.approverId, requester.id))).toBe(true);
        world.stages.forEach((stage, index) => {
          if (!(index < row.currentStage || (index === row.currentStage && reachedApproval))) return;
          const approvals = row.decisions.filter((d) => d.stage === index && d.decision === "approve");
          expect(
            byDistinctParties(
              approvals,
              owned,
              requester.id,
              stage.oneFromEachGroup ? stage.groups.length : stage.required,
              stage.oneFromEachGroup ? stage.groups : undefined,
            ),
          ).toBe(true);
        });
      }),
      { numRuns: 30 },
    );
  });
});
