import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { startFakeAirflow, type FakeAirflow } from "../fakes/airflow";
import type { Principal } from "@/lib/policy/evaluate";

let airflow: FakeAirflow;
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal, bob: Principal;

beforeAll(async () => {
  airflow = await startFakeAirflow({ version: "v2", dags: { settlement: { tasks: ["extract", "load"] } }, users: { latchkey: { password: "pw", canWrite: true } } });
  Object.assign(process.env, { TEST_AIRFLOW_URL: airflow.url, TEST_AIRFLOW_USER: "latchkey", TEST_AIRFLOW_PASSWORD: "pw" });
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await fx?.close();
  await airflow?.close();
});

const actions = async (id: string) => (await fx.db.auditEvent.findMany({ where: { requestId: id }, orderBy: { id: "asc" } })).map((e) => e.action);
const row = (id: string) => fx.db.accessRequest.findUniqueOrThrow({ where: { id } });

describe("job workflows on Airflow", () => {
  it("Trigger a DAG run starts one run for the request and follows it to completion", async () => {
    const request = await engine.createRequest(alice, "trigger-dag", { targetId: "settlement-airflow", conf: '{"day": "2026-11-24"}', justification: "Re-run yesterday's settlement after the fix" });
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(await engine.performQueued(request.id, false)).toBe("active");
    const run = airflow.runs.get(`settlement/latchkey__${request.id}`)!;
    expect(run).toMatchObject({ conf: { day: "2026-11-24" }, note: `Latchkey request ${request.id} by alice@example.com`, logical_date: null });
    expect(await row(request.id)).toMatchObject({ status: "executing", externalRef: `settlement/latchkey__${request.id}`, externalState: "queued" });
    // A retried execution does not start a second run.
    await fx.db.accessRequest.update({ where: { id: request.id }, data: { externalRef: null } });
    await engine.performQueued(request.id, false);
    expect([...airflow.runs.keys()].filter((k) => k.includes(request.id))).toHaveLength(1);

    run.state = "running";
    expect(await engine.followQueued(request.id)).toBe("running");
    expect((await row(request.id)).externalState).toBe("running");
    run.state = "success";
    expect(await engine.followQueued(request.id)).toBe("ended");
    expect((await row(request.id)).status).toBe("completed");
    expect(await actions(request.id)).toEqual(expect.arrayContaining(["integration.performed", "integration.state", "request.completed"]));
  });

  it("a run that ends failed fails the request, with the reason", async () => {
    const request = await engine.createRequest(alice, "trigger-dag", { targetId: "settlement-airflow", conf: "{}", justification: "Run the settlement for the audit sample" });
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    await engine.performQueued(request.id, false);
    airflow.runs.get(`settlement/latchkey__${request.id}`)!.state = "failed";
    expect(await engine.followQueued(request.id)).toBe("ended");
    expect(await row(request.id)).toMatchObject({ status: "failed", failureReason: `Airflow run latchkey__${request.id} ended failed.` });
  });

  it("Restart a job clears only the failed tasks of the chosen run, and refuses bad input before anything runs", async () => {
    const triggered = await engine.createRequest(alice, "trigger-dag", { targetId: "settlement-airflow", conf: "{}", justification: "Initial run for the restart test" });
    await engine.decide(bob, { requestId: triggered.id, decision: "approve", comment: "" });
    await engine.performQueued(triggered.id, false);
    const runId = `latchkey__${triggered.id}`;
    airflow.failTasks("settlement", runId, ["load"]);

    await expect(engine.createRequest(alice, "trigger-dag", { targetId: "settlement-airflow", conf: "[1,2]", justification: "Initial run for the restart test" })).rejects.toMatchObject({ code: "invalid", fieldErrors: { conf: expect.stringContaining("JSON object") } });
    const restart = await engine.createRequest(alice, "restart-job", { targetId: "settlement-airflow", runId, scope: ["failed-tasks"], maxActiveTasks: 2, justification: "Load failed on a transient DB error" });
    await engine.decide(bob, { requestId: restart.id, decision: "approve", comment: "" });
    expect(await engine.performQueued(restart.id, false)).toBe("active");
    const clear = airflow.requests.filter((r) => r.path.endsWith("/clearTaskInstances")).at(-1)!;
    expect(clear.body).toMatchObject({ dry_run: false, only_failed: true, dag_run_id: runId });
    expect(airflow.runs.get(`settlement/${runId}`)!.tasks.find((t) => t.task_id === "load")!.state).toBeNull();
    airflow.runs.get(`settlement/${runId}`)!.state = "success";
    expect(await engine.followQueued(restart.id)).toBe("ended");
    expect((await row(restart.id)).status).toBe("completed");

    const unknown = await engine.createRequest(alice, "restart-job", { targetId: "settlement-airflow", runId: "no_such_run", scope: ["failed-tasks"], maxActiveTasks: 2, justification: "Load failed on a transient DB error" });
    await engine.decide(bob, { requestId: unknown.id, decision: "approve", comment: "" });
    // A 404 will not heal by retrying: it fails at once with Airflow's reason in words.
    expect(await engine.performQueued(unknown.id, false)).toBe("failed");
    expect((await row(unknown.id)).failureReason).toMatch(/^Airflow does not know it \(404\) while trying to restart failed tasks of settlement/);
  });
});

describe("integration status for admins", () => {
  it("checks each configured integration now and lists the last execution errors", async () => {
    const { integrationStatuses } = await import("@/lib/integrations/status");
    const statuses = await integrationStatuses();
    const airflowRow = statuses.find((s) => s.targetId === "settlement-airflow")!;
    expect(airflowRow).toMatchObject({ kind: "airflow", reachable: true });
    expect(airflowRow.lastErrors[0]!.message).toMatch(/ended failed|does not know it/);
    expect(statuses.find((s) => s.targetId === "ledger-db")).toMatchObject({ kind: "postgres", reachable: false, detail: "TEST_LEDGER_DB_URL is not set" });
    expect(statuses.find((s) => s.targetId === "internal-app")).toMatchObject({ kind: "haproxy", reachable: false });
    await airflow.close();
    expect((await integrationStatuses()).find((s) => s.targetId === "settlement-airflow")).toMatchObject({ reachable: false });
  });
});
