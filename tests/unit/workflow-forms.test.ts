import { describe, expect, it } from "vitest";
import { describeFields } from "@/lib/workflows/fields";
import { listWorkflows } from "@/lib/workflows/registry";
import { WORKFLOW_SCHEMAS } from "@/lib/workflows/definitions";
import { restartJobSchema } from "@/lib/workflows/restart-job/definition";
import { temporaryAccessSchema } from "@/lib/workflows/temporary-access/definition";

describe("forms generated from workflow schemas", () => {
  it("temporary access: target and role from the policy, duration with bounds, long text", () => {
    expect(describeFields(temporaryAccessSchema).map((f) => [f.name, f.kind, f.label, f.optionsFrom ?? null, f.required])).toEqual([
      ["targetId", "select", "Target", "policy:targets", true],
      ["role", "select", "Role", "policy:roles", true],
      ["durationMinutes", "duration", "Duration (minutes)", null, true],
      ["justification", "longtext", "Justification", null, true],
    ]);
  });

  it("restart a job: text with help, multi-select, boolean with its default; every field reaches Airflow", () => {
    const fields = describeFields(restartJobSchema);
    expect(fields.map((f) => [f.name, f.kind])).toEqual([
      ["targetId", "select"],
      ["runId", "text"],
      ["scope", "multiselect"],
      ["dryRun", "boolean"],
      ["justification", "longtext"],
    ]);
    expect(fields.find((f) => f.name === "scope")!.options).toEqual(["failed-tasks", "downstream", "upstream"]);
    expect(fields.find((f) => f.name === "dryRun")).toMatchObject({ defaultValue: false, required: false, label: "Dry run" });
    expect(fields.find((f) => f.name === "runId")!.help).toBe("The failed run, as the scheduler shows it.");
  });

  it("every registered workflow has a browser schema, and it is the one the server uses", () => {
    for (const workflow of listWorkflows()) {
      expect(WORKFLOW_SCHEMAS[workflow.id]).toBe(workflow.inputSchema);
      expect(() => describeFields(WORKFLOW_SCHEMAS[workflow.id]!)).not.toThrow();
    }
  });

  it("the shared schema refuses tampered and hidden fields and reports each bad field", () => {
    const result = restartJobSchema.safeParse({ targetId: "x", runId: "bad id!", scope: [], justification: "short", requesterId: "someone" });
    expect(result.success).toBe(false);
    const byField = Object.fromEntries(result.error!.issues.map((i) => [String(i.path[0] ?? i.code), i.message]));
    expect(byField).toMatchObject({
      runId: "A run id has letters, digits and . _ : + - only.",
      scope: "Choose at least one thing to clear.",
      justification: "Say why you need this access (at least 10 characters).",
    });
    expect(result.error!.issues.some((i) => i.code === "unrecognized_keys")).toBe(true);
    // Upstream or downstream alone means nothing to Airflow: they widen the failed tasks.
    const alone = restartJobSchema.safeParse({ targetId: "x", runId: "r1", scope: ["upstream"], justification: "long enough reason" });
    expect(alone.error!.issues.map((i) => [i.path.join("."), i.message])).toEqual([
      ["scope", "Upstream and downstream tasks are cleared around the failed tasks: keep failed-tasks chosen."],
    ]);
    // The parallelism field is gone: no Airflow API takes a per-run setting for it.
    const parallel = restartJobSchema.safeParse({
      targetId: "x",
      runId: "r1",
      scope: ["failed-tasks"],
      maxActiveTasks: 2,
      justification: "long enough reason",
    });
    expect(parallel.error!.issues.map((i) => i.code)).toEqual(["unrecognized_keys"]);
  });
});
