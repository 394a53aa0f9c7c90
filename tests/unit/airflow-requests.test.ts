import { describe, expect, it } from "vitest";
import { reasonOf } from "@/lib/integrations/airflow/errors";
import { clearTaskInstancesCall, triggerDagRunCall } from "@/lib/integrations/airflow/requests";
import { restartJobPreview } from "@/lib/workflows/restart-job/server";
import { triggerDagPreview } from "@/lib/workflows/trigger-dag/server";
import { targetSchema } from "@/lib/policy/schema";
import { BODIES, validateBody } from "../fakes/airflow-bodies";

const target = (version: "v1" | "v2", extra: Record<string, unknown> = {}) =>
  targetSchema.parse({
    title: "jobs",
    service: "airflow",
    environment: "prod",
    airflow: { dagId: "jobs", version, urlEnv: "U", userEnv: "N", passwordEnv: "P", ...extra },
  });

describe("the Airflow calls Latchkey builds", () => {
  it("the policy's Airflow block: unpause is off unless said, queuedTimeout is a duration", () => {
    expect(target("v2").airflow).toMatchObject({ unpause: false });
    expect(target("v2").airflow!.queuedTimeout).toBeUndefined();
    expect(target("v1", { unpause: true, queuedTimeout: "15m" }).airflow).toMatchObject({ unpause: true, queuedTimeout: 900 });
    expect(() => target("v1", { queuedTimeout: "soon" })).toThrow(/is not a duration/);
  });

  for (const version of ["v1", "v2"] as const) {
    it(`every body shown to approvers is one Airflow ${version === "v1" ? "2" : "3"} accepts as it stands`, () => {
      const trigger = triggerDagPreview({
        requestId: "r1",
        requesterEmail: "a@example.com",
        input: { targetId: "t", conf: '{"a": 1}', justification: "x".repeat(1000) },
        target: target(version, { unpause: true }),
      });
      const restart = restartJobPreview({
        input: { targetId: "t", runId: "run1", scope: ["failed-tasks", "upstream", "downstream"], dryRun: false, justification: "because it failed" },
        target: target(version, { unpause: true }),
      });
      const specs = { "/dagRuns": BODIES[version].trigger, "/clearTaskInstances": BODIES[version].clear, "?update_mask=is_paused": BODIES[version].patchDag };
      const posted = [...trigger.calls, ...restart.calls].filter((c) => c.body);
      expect(posted.map((c) => c.method)).toEqual(["PATCH", "POST", "PATCH", "POST"]);
      for (const call of posted) {
        const spec = Object.entries(specs).find(([suffix]) => call.path.endsWith(suffix))![1];
        expect(validateBody(version, spec, call.body as Record<string, unknown>), call.path).toMatchObject({ ok: true });
      }
      // Airflow keeps 1000 characters of a note; a longer one is cut, not refused.
      expect(String((trigger.calls.at(-1)!.body as { note: string }).note)).toHaveLength(1000);
      expect(restart.calls.at(-1)!.body).toMatchObject({
        include_upstream: true,
        include_downstream: true,
        only_failed: false,
        dry_run: false,
        reset_dag_runs: true,
      });
    });
  }

  it("a clear always names its tasks and says dry_run and reset_dag_runs, whose defaults differ between versions", () => {
    const body = clearTaskInstancesCall({ dagId: "d/x", runId: "r", taskIds: ["t"], includeUpstream: false, includeDownstream: false, dryRun: true }).body!;
    expect(Object.keys(body).sort()).toEqual(["dag_run_id", "dry_run", "include_downstream", "include_upstream", "only_failed", "reset_dag_runs", "task_ids"]);
    expect(triggerDagRunCall("v2", { dagId: "d/x", runId: "r", conf: {}, note: "" }).path).toBe("/dags/d%2Fx/dagRuns");
  });

  it("a target without Airflow previews nothing sent and says the request would fail", () => {
    expect(
      restartJobPreview({ input: { targetId: "t", runId: "r", scope: ["failed-tasks"], dryRun: false, justification: "because" }, target: undefined }),
    ).toMatchObject({ calls: [], notes: [expect.stringContaining("would fail")] });
  });

  it("reads the reason in both versions' error bodies", () => {
    expect(reasonOf(JSON.stringify({ type: "about:blank", title: "Bad Request", status: 400, detail: "{'x': ['Unknown field.']}" }))).toBe(
      "{'x': ['Unknown field.']}",
    );
    expect(reasonOf(JSON.stringify({ type: "about:blank", title: "Forbidden", status: 403, detail: null }))).toBe("Forbidden");
    expect(
      reasonOf(
        JSON.stringify({
          detail: [
            { type: "missing", loc: ["body", "logical_date"], msg: "Field required" },
            { type: "model_attributes_type", loc: ["body"], msg: "Input should be a valid dictionary" },
          ],
        }),
      ),
    ).toBe("logical_date: Field required; Input should be a valid dictionary");
    expect(reasonOf(JSON.stringify({ detail: { reason: "Unique constraint violation", statement: "INSERT", orig_error: "dup" } }))).toBe(
      "Unique constraint violation",
    );
    expect(reasonOf("<html>Bad Gateway</html>")).toBe("<html>Bad Gateway</html>");
    expect(reasonOf("")).toBe("no details given");
  });
});
