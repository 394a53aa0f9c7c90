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
