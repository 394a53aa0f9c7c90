import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { engineFixture } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let alice: Principal;
const executed: string[] = [];
let sourceFails = false;
let executeFails = false;

beforeAll(async () => {
  fx = await engineFixture();
  alice = await fx.user("alice@example.com", ["engineering"]);
  const { registerWorkflow } = await import("@/lib/workflows/registry");
  const { registerOptionSource } = await import("@/lib/workflows/option-sources");
  // A workflow added from outside the engine, with a field whose options an integration provides.
  registerOptionSource("reports", async ({ targetId }) => {
    if (sourceFails) throw new Error("scheduler unreachable");
    return targetId === "settlement-dag" ? ["daily", "weekly"] : [];
  });
  registerWorkflow({
    id: "rerun-report",
    title: "Re-run a report",
    description: "test workflow",
    category: "Jobs",
    risk: "low",
    lasting: false,
    kind: "inline",
    inputSchema: z
      .object({
        targetId: z.string().min(1).meta({ optionsFrom: "policy:targets" }),
        report: z.string().min(1).meta({ label: "Report", optionsFrom: "integration:reports" }),
        justification: z.string().min(10),
      })
      .strict() as never,
    async execute({ request }) {
      const { ExecutionFailure } = await import("@/lib/workflows/types");
      if (executeFails) throw new ExecutionFailure("The scheduler refused the run.");
      executed.push(request.id);
      return { audit: { ran: "yes" } };
    },
    async revoke() {},
  });
});
afterAll(() => fx?.close());

describe("workflows registered from outside the engine", () => {
  it("appear in the catalog for people the policy allows, and their integration options are offered", async () => {
    const { listWorkflows } = await import("@/lib/workflows/registry");
    const { describeFields } = await import("@/lib/workflows/fields");
    const { resolveOptions } = await import("@/lib/workflows/option-sources");
    const workflow = listWorkflows().find((w) => w.id === "rerun-report")!;
    expect(describeFields(workflow.inputSchema as never).find((f) => f.name === "report")).toMatchObject({
      kind: "select",
      optionsFrom: "integration:reports",
      label: "Report",
    });
    expect(await resolveOptions("reports", { who: alice, targetId: "settlement-dag" })).toEqual(["daily", "weekly"]);
  });

  it("the server accepts only a value the integration offers, and says so when the source is down", async () => {
    const engine = await import("@/lib/approvals/engine");
    const ok = await engine.createRequest(alice, "rerun-report", { targetId: "settlement-dag", report: "weekly", justification: "month end numbers were off" });
    expect(ok.status).toBe("pending");
    await expect(
      engine.createRequest(alice, "rerun-report", { targetId: "settlement-dag", report: "everything", justification: "month end numbers were off" }),
    ).rejects.toMatchObject({
      code: "invalid",
      fieldErrors: { report: "Choose one of the offered options." },
    });
    sourceFails = true;
    try {
      await expect(
        engine.createRequest(alice, "rerun-report", { targetId: "settlement-dag", report: "weekly", justification: "month end numbers were off" }),
      ).rejects.toMatchObject({
        code: "invalid",
        fieldErrors: { report: "The options could not be loaded: scheduler unreachable" },
      });
    } finally {
      sourceFails = false;
    }
    const bob = await fx.user("bob@example.com", ["engineering-leads"]);
    // A one-off workflow that succeeds: executed once, audited, no credential.
    await engine.decide(bob, { requestId: ok.id, decision: "approve", comment: "" });
    expect(executed).toEqual([ok.id]);
    expect(await fx.db.credential.count({ where: { requestId: ok.id } })).toBe(0);
  });

  it("a run the outside system refuses at approval ends the request failed, in one write, with every step audited in order", async () => {
    const engine = await import("@/lib/approvals/engine");
    const bob = await fx.user("bob2@example.com", ["engineering-leads"]);
    const request = await engine.createRequest(alice, "rerun-report", {
      targetId: "settlement-dag",
      report: "daily",
      justification: "month end numbers were off",
    });
    executeFails = true;
    let failed;
    try {
      failed = await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    } finally {
      executeFails = false;
    }
    expect(failed).toMatchObject({ status: "failed", failureReason: "The scheduler refused the run." });
    expect(failed.decidedAt).toBeInstanceOf(Date);
    expect(failed.endedAt).toBeInstanceOf(Date);
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).toMatchObject({
      status: "failed",
      failureReason: "The scheduler refused the run.",
    });
    const events = await fx.db.auditEvent.findMany({ where: { requestId: request.id }, orderBy: { id: "asc" } });
    expect(events.map((e) => [e.action, e.fromStatus, e.toStatus])).toEqual([
      ["request.created", null, "pending"],
      ["request.approved", "pending", "approved"],
      ["request.executing", "approved", "executing"],
      ["request.failed", "executing", "failed"],
    ]);
    expect(executed).not.toContain(request.id);
  });
});
