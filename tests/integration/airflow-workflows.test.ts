import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { startFakeAirflow, type FakeAirflow } from "../fakes/airflow";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * The Airflow workflows end to end through the engine, against the fake held to Airflow's
 * published API: settlement-airflow is an Airflow 3 target (/api/v2) with the policy's
 * defaults, reports-airflow an Airflow 2 target (/api/v1) whose policy lets Latchkey unpause
 * its DAG and gives runs 10 minutes to leave the queue.
 */
let airflow: FakeAirflow;
let airflow2: FakeAirflow;
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let queries: typeof import("@/lib/approvals/queries");
let alice: Principal, bob: Principal;

beforeAll(async () => {
  airflow = await startFakeAirflow({
    version: "v2",
    dags: { settlement: { tasks: ["extract", "load", "report"] } },
    users: { latchkey: { password: "pw", canWrite: true } },
  });
  airflow2 = await startFakeAirflow({
    version: "v1",
    dags: { reports: { tasks: ["fetch", "render", "publish", "cleanup"], downstream: { fetch: ["render"], render: ["publish", "cleanup"] }, paused: true } },
    users: { latchkey2: { password: "pw2", canWrite: true, canEditDag: true } },
  });
  Object.assign(process.env, { TEST_AIRFLOW_URL: airflow.url, TEST_AIRFLOW_USER: "latchkey", TEST_AIRFLOW_PASSWORD: "pw" });
  Object.assign(process.env, { TEST_AIRFLOW_V1_URL: airflow2.url, TEST_AIRFLOW_V1_USER: "latchkey2", TEST_AIRFLOW_V1_PASSWORD: "pw2" });
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  queries = await import("@/lib/approvals/queries");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await fx?.close();
  await airflow?.close();
  await airflow2?.close();
});

const actions = async (id: string) => (await fx.db.auditEvent.findMany({ where: { requestId: id }, orderBy: { id: "asc" } })).map((e) => e.action);
const performed = async (id: string) =>
  (await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: id, action: "integration.performed" } })).data as Record<string, string>;
const row = (id: string) => fx.db.accessRequest.findUniqueOrThrow({ where: { id } });
const preview = async (id: string) => (await queries.getRequestView(bob, id)).outsidePreview!;
const minutesFromNow = (m: number) => new Date(Date.now() + m * 60_000);
const lastPost = (fake: FakeAirflow, suffix: string) => fake.requests.filter((r) => r.method === "POST" && r.path.endsWith(suffix)).at(-1)!;

async function approved(workflowId: string, input: Record<string, unknown>) {
  const request = await engine.createRequest(alice, workflowId, input);
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
  return request;
}

async function failedRun(fake: FakeAirflow, targetId: string, dagId: string, failed: string[]) {
  const trigger = await approved("trigger-dag", { targetId, conf: "{}", justification: "A run for the restart test" });
  expect(await engine.performQueued(trigger.id, false)).toBe("active");
  const runId = `latchkey__${trigger.id}`;
  fake.failTasks(dagId, runId, failed);
  return runId;
}

describe("Trigger a DAG run", () => {
  it("starts one run for the request, sending what the approver was shown, and follows it to completion", async () => {
    const request = await engine.createRequest(alice, "trigger-dag", {
      targetId: "settlement-airflow",
      conf: '{"day": "2026-11-24"}',
      justification: "Re-run yesterday's settlement after the fix",
    });
    const shown = await preview(request.id);
    expect(shown.system).toBe("Airflow (/api/v2)");
    expect(shown.calls.map((c) => `${c.method} ${c.path}`)).toEqual(["GET /dags/settlement", "POST /dags/settlement/dagRuns"]);
    // The API's approvers (CLI, automation) see the same.
    const { requestDetail } = await import("@/lib/api/views");
    expect((await requestDetail(bob, request.id)).outsidePreview).toEqual(shown);
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(await engine.performQueued(request.id, false)).toBe("active");
    expect(lastPost(airflow, "/dagRuns").body).toEqual(shown.calls[1]!.body);
    const run = airflow.runs.get(`settlement/latchkey__${request.id}`)!;
    expect(run).toMatchObject({
      conf: { day: "2026-11-24" },
      note: `Latchkey request ${request.id} by alice@example.com: Re-run yesterday's settlement after the fix`,
      logical_date: null,
    });
    expect(await row(request.id)).toMatchObject({ status: "executing", externalRef: `settlement/latchkey__${request.id}`, externalState: "queued" });
    // A retried execution does not start a second run.
    await fx.db.accessRequest.update({ where: { id: request.id }, data: { externalRef: null } });
    await engine.performQueued(request.id, false);
    expect([...airflow.runs.keys()].filter((k) => k.includes(request.id))).toHaveLength(1);

    airflow.schedule();
    expect(await engine.followQueued(request.id)).toBe("running");
    expect((await row(request.id)).externalState).toBe("running");
    // The token ends early (a rotated secret): the next look signs in again and carries on.
    airflow.rotateTokenSecret();
    run.state = "success";
    expect(await engine.followQueued(request.id)).toBe("ended");
    expect((await row(request.id)).status).toBe("completed");
    expect(await actions(request.id)).toEqual(expect.arrayContaining(["integration.performed", "integration.state", "request.completed"]));
  });

  it("a run that ends failed fails the request, with the reason", async () => {
    const request = await approved("trigger-dag", { targetId: "settlement-airflow", conf: "{}", justification: "Run the settlement for the audit sample" });
    await engine.performQueued(request.id, false);
    airflow.runs.get(`settlement/latchkey__${request.id}`)!.state = "failed";
    expect(await engine.followQueued(request.id)).toBe("ended");
    expect(await row(request.id)).toMatchObject({ status: "failed", failureReason: `Airflow run latchkey__${request.id} ended failed.` });
  });

  it("refuses to start a run on a paused DAG, naming it and how to unpause it; nothing is started", async () => {
    airflow.paused.set("settlement", true);
    try {
      const request = await approved("trigger-dag", { targetId: "settlement-airflow", conf: "{}", justification: "Run while the DAG is paused" });
      expect(await engine.performQueued(request.id, false)).toBe("failed");
      const { failureReason } = await row(request.id);
      expect(failureReason).toContain("DAG settlement is paused in Airflow, so a run would stay queued: nothing was started.");
      expect(failureReason).toContain("`airflow dags unpause settlement`");
      expect(failureReason).toContain("`airflow.unpause: true`");
      expect([...airflow.runs.keys()].filter((k) => k.includes(request.id))).toEqual([]);
      expect(airflow.paused.get("settlement")).toBe(true);
    } finally {
      airflow.paused.set("settlement", false);
    }
  });

  it("unpauses a paused DAG when the target's policy allows it, and records that it did", async () => {
    expect(airflow2.paused.get("reports")).toBe(true);
    const request = await approved("trigger-dag", { targetId: "reports-airflow", conf: '{"week": 48}', justification: "Weekly reports for the board" });
    const shown = await preview(request.id);
    expect(shown.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "GET /dags/reports",
      "PATCH /dags/reports?update_mask=is_paused",
      "POST /dags/reports/dagRuns",
    ]);
    expect(await engine.performQueued(request.id, false)).toBe("active");
    expect(airflow2.paused.get("reports")).toBe(false);
    expect(await performed(request.id)).toMatchObject({ unpaused: "true", created: "true" });
    // Airflow 2 refuses unknown fields: the body has none, and no logical_date (2.x dates the run itself).
    expect(lastPost(airflow2, "/dagRuns")).toMatchObject({ status: 200, body: shown.calls[2]!.body });
    expect(Object.keys(shown.calls[2]!.body as object).sort()).toEqual(["conf", "dag_run_id", "note"]);
    airflow2.schedule();
    expect(await engine.followQueued(request.id)).toBe("running");
    // The DAG is unpaused now: a second request finds it so and leaves it alone.
    const second = await approved("trigger-dag", { targetId: "reports-airflow", conf: "{}", justification: "Weekly reports, second batch" });
    expect(await engine.performQueued(second.id, false)).toBe("active");
    expect((await performed(second.id)).unpaused).toBeUndefined();
    expect(airflow2.requests.filter((r) => r.method === "PATCH")).toHaveLength(1);
  });

  it("a run that stays queued past the target's queuedTimeout fails the request with that reason", async () => {
    const request = await approved("trigger-dag", { targetId: "settlement-airflow", conf: "{}", justification: "Run that the scheduler never picks up" });
    await engine.performQueued(request.id, false);
    expect(await engine.followQueued(request.id, minutesFromNow(59))).toBe("running");
    expect((await row(request.id)).status).toBe("executing");
    expect(await engine.followQueued(request.id, minutesFromNow(61))).toBe("ended");
    expect(await row(request.id)).toMatchObject({ status: "failed", externalState: "queued" });
    expect((await row(request.id)).failureReason).toMatch(
      new RegExp(`^Airflow run latchkey__${request.id} stayed queued for more than 1h \\(the target's queuedTimeout\\)\\. Is the scheduler running`),
    );

    // On the Airflow 2 target (10m), a DAG paused behind Latchkey's back is named as the reason.
    const paused = await approved("trigger-dag", { targetId: "reports-airflow", conf: "{}", justification: "Run paused after it was queued" });
    await engine.performQueued(paused.id, false);
    airflow2.paused.set("reports", true);
    airflow2.schedule();
    expect(await engine.followQueued(paused.id, minutesFromNow(9))).toBe("running");
    expect(await engine.followQueued(paused.id, minutesFromNow(11))).toBe("ended");
    expect((await row(paused.id)).failureReason).toContain(
      "stayed queued for more than 10m (the target's queuedTimeout). DAG reports is paused: unpause it in Airflow",
    );
    airflow2.paused.set("reports", false);
  });
});

describe("Restart a job", () => {
  it("clears the run's failed tasks and everything upstream of them, as the approver was shown", async () => {
    const runId = await failedRun(airflow, "settlement-airflow", "settlement", ["load"]);
    const request = await engine.createRequest(alice, "restart-job", {
      targetId: "settlement-airflow",
      runId,
      scope: ["failed-tasks", "upstream"],
      justification: "Load failed on a transient DB error",
    });
    const shown = await preview(request.id);
    expect(shown.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "GET /dags/settlement",
      `GET /dags/settlement/dagRuns/${runId}`,
      `GET /dags/settlement/dagRuns/${runId}/taskInstances?state=failed&state=upstream_failed&limit=100&offset=0`,
      "POST /dags/settlement/clearTaskInstances",
    ]);
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(await engine.performQueued(request.id, false)).toBe("active");
    const sent = lastPost(airflow, "/clearTaskInstances").body as Record<string, unknown>;
    expect(sent).toEqual({
      dry_run: false,
      dag_run_id: runId,
      task_ids: ["load", "report"],
      include_upstream: true,
      include_downstream: false,
      only_failed: false,
      reset_dag_runs: true,
    });
    // What was shown is what was sent, but for the task ids, which Airflow tells just before the clear.
    expect({ ...(shown.calls[3]!.body as object), task_ids: sent.task_ids }).toEqual(sent);
    expect(await performed(request.id)).toMatchObject({ sent: JSON.stringify(sent), cleared: "extract, load, report", dryRun: "false" });
    expect(airflow.runs.get(`settlement/${runId}`)!.tasks.map((t) => t.state)).toEqual([null, null, null]);
    expect(airflow.runs.get(`settlement/${runId}`)!.state).toBe("queued");
    airflow.schedule();
    expect(await engine.followQueued(request.id)).toBe("running");
    airflow.runs.get(`settlement/${runId}`)!.state = "success";
    expect(await engine.followQueued(request.id)).toBe("ended");
    expect((await row(request.id)).status).toBe("completed");
  });

  it("on Airflow 2: a dry run changes nothing; downstream reaches tasks beyond the failed ones that ran anyway", async () => {
    const runId = await failedRun(airflow2, "reports-airflow", "reports", ["render"]);
    airflow2.runs.get(`reports/${runId}`)!.tasks.find((t) => t.task_id === "cleanup")!.state = "success"; // trigger rule all_done
    const dry = await approved("restart-job", {
      targetId: "reports-airflow",
      runId,
      scope: ["failed-tasks", "downstream"],
      dryRun: true,
      justification: "What would a restart clear?",
    });
    expect(await engine.performQueued(dry.id, false)).toBe("active");
    expect(await performed(dry.id)).toMatchObject({ cleared: "render, publish, cleanup", dryRun: "true" });
    expect(airflow2.runs.get(`reports/${runId}`)!.tasks.map((t) => t.state)).toEqual(["success", "failed", "upstream_failed", "success"]);
    expect(await engine.followQueued(dry.id)).toBe("ended");
    expect(await row(dry.id)).toMatchObject({ status: "completed", externalState: "dry run" });

    const failedOnly = await approved("restart-job", {
      targetId: "reports-airflow",
      runId,
      scope: ["failed-tasks"],
      justification: "Render failed on a full disk",
    });
    expect(await engine.performQueued(failedOnly.id, false)).toBe("active");
    expect(lastPost(airflow2, "/clearTaskInstances")).toMatchObject({
      status: 200,
      body: { task_ids: ["render", "publish"], include_downstream: false, reset_dag_runs: true },
    });
    expect(airflow2.runs.get(`reports/${runId}`)!.tasks.map((t) => t.state)).toEqual(["success", null, null, "success"]);
    // Airflow 2 defaults reset_dag_runs to false: Latchkey says true, so the run is queued again.
    expect(airflow2.runs.get(`reports/${runId}`)!.state).toBe("queued");
  });

  it("refuses bad input before anything runs, and fails at once on a run Airflow does not know", async () => {
    await expect(
      engine.createRequest(alice, "trigger-dag", { targetId: "settlement-airflow", conf: "[1,2]", justification: "Initial run for the restart test" }),
    ).rejects.toMatchObject({ code: "invalid", fieldErrors: { conf: expect.stringContaining("JSON object") } });
    await expect(
      engine.createRequest(alice, "restart-job", {
        targetId: "settlement-airflow",
        runId: "r1",
        scope: ["downstream"],
        justification: "Only downstream, please",
      }),
    ).rejects.toMatchObject({ code: "invalid", fieldErrors: { scope: expect.stringContaining("keep failed-tasks chosen") } });
    // The parallelism field is gone: Airflow's API has no per-run setting to send it to.
    await expect(
      engine.createRequest(alice, "restart-job", {
        targetId: "settlement-airflow",
        runId: "r1",
        scope: ["failed-tasks"],
        maxActiveTasks: 2,
        justification: "Load failed on a transient DB error",
      }),
    ).rejects.toMatchObject({ code: "invalid" });

    for (const targetId of ["settlement-airflow", "reports-airflow"]) {
      const unknown = await approved("restart-job", {
        targetId,
        runId: "no_such_run",
        scope: ["failed-tasks"],
        justification: "Load failed on a transient DB error",
      });
      // A 404 will not heal by retrying: it fails at once with Airflow's reason in words.
      expect(await engine.performQueued(unknown.id, false)).toBe("failed");
      expect((await row(unknown.id)).failureReason).toMatch(
        /^Airflow does not know it \(404\) while trying to read run no_such_run of DAG (settlement|reports)/,
      );
    }
    // A refused password will not heal by retrying either.
    process.env.TEST_AIRFLOW_PASSWORD = "wrong";
    try {
      const refused = await approved("trigger-dag", { targetId: "settlement-airflow", conf: "{}", justification: "Run with a stale password" });
      expect(await engine.performQueued(refused.id, false)).toBe("failed");
      expect((await row(refused.id)).failureReason).toBe(
        "Airflow refused Latchkey's credentials (401) while trying to sign in: Invalid credentials. Check the Airflow user or password.",
      );
    } finally {
      process.env.TEST_AIRFLOW_PASSWORD = "pw";
    }
    const succeeded = await failedRun(airflow, "settlement-airflow", "settlement", []);
    airflow.runs.get(`settlement/${succeeded}`)!.state = "success";
    const nothing = await approved("restart-job", {
      targetId: "settlement-airflow",
      runId: succeeded,
      scope: ["failed-tasks"],
      justification: "Nothing failed, nothing to clear",
    });
    expect(await engine.performQueued(nothing.id, false)).toBe("failed");
    expect((await row(nothing.id)).failureReason).toBe(`Run ${succeeded} of DAG settlement has no failed tasks: nothing was cleared.`);
  });
});

describe("integration status for admins", () => {
  it("checks each configured integration now and lists the last execution errors", async () => {
    const { integrationStatuses } = await import("@/lib/integrations/status");
    const statuses = await integrationStatuses();
    const airflowRow = statuses.find((s) => s.targetId === "settlement-airflow")!;
    expect(airflowRow).toMatchObject({ kind: "airflow", reachable: true });
    expect(airflowRow.lastErrors[0]!.message).toMatch(/no failed tasks|does not know it|stayed queued|ended failed|is paused/);
    expect(statuses.find((s) => s.targetId === "reports-airflow")).toMatchObject({ kind: "airflow", reachable: true });
    expect(statuses.find((s) => s.targetId === "ledger-db")).toMatchObject({ kind: "postgres", reachable: false, detail: "TEST_LEDGER_DB_URL is not set" });
    expect(statuses.find((s) => s.targetId === "internal-app")).toMatchObject({ kind: "haproxy", reachable: false });
    await airflow.close();
    expect((await integrationStatuses()).find((s) => s.targetId === "settlement-airflow")).toMatchObject({ reachable: false });
  });
});
