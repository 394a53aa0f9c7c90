import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { airflowClient, type AirflowApiVersion } from "@/lib/integrations/airflow/client";
import { startFakeAirflow, type FakeAirflow } from "../fakes/airflow";

for (const version of ["v1", "v2"] as AirflowApiVersion[]) {
  describe(`Airflow client against the ${version} API`, () => {
    let airflow: FakeAirflow;
    const users = { latchkey: { password: "secret", canWrite: true }, viewer: { password: "secret", canWrite: false } };
    beforeAll(async () => {
      airflow = await startFakeAirflow({ version, dags: { settlement: { tasks: ["extract", "load", "report"] } }, users });
    });
    afterAll(() => airflow?.close());
    const client = (username = "latchkey", password = "secret") => airflowClient({ baseUrl: airflow.url, version, username, password });

    it("triggers a run with the request's run id, conf and note; a retry finds the same run", async () => {
      const run = await client().triggerDagRun({ dagId: "settlement", runId: "latchkey__req1", conf: { day: "2026-11-24" }, note: "Latchkey request req1" });
      expect(run).toEqual({ dagId: "settlement", runId: "latchkey__req1", state: "queued", created: true });
      const sent = airflow.requests.find((r) => r.method === "POST" && r.path.endsWith("/dagRuns"))!.body as Record<string, unknown>;
      expect(sent).toEqual(version === "v2" ? { dag_run_id: "latchkey__req1", logical_date: null, conf: { day: "2026-11-24" }, note: "Latchkey request req1" } : { dag_run_id: "latchkey__req1", conf: { day: "2026-11-24" }, note: "Latchkey request req1" });
      const again = await client().triggerDagRun({ dagId: "settlement", runId: "latchkey__req1", conf: {}, note: "retry" });
      expect(again).toMatchObject({ runId: "latchkey__req1", created: false });
      expect([...airflow.runs.keys()].filter((k) => k.endsWith("latchkey__req1"))).toHaveLength(1);
    });

    it("restarts only the failed tasks of a run, with dry_run false said explicitly", async () => {
      await client().triggerDagRun({ dagId: "settlement", runId: "latchkey__req2", conf: {}, note: "" });
      airflow.failTasks("settlement", "latchkey__req2", ["load"]);
      expect((await client().getDagRun("settlement", "latchkey__req2")).state).toBe("failed");
      const preview = await client().clearFailedTasks({ dagId: "settlement", runId: "latchkey__req2", dryRun: true });
      expect(preview.taskIds).toEqual(["load"]);
      expect((await client().getDagRun("settlement", "latchkey__req2")).state).toBe("failed");
      const cleared = await client().clearFailedTasks({ dagId: "settlement", runId: "latchkey__req2" });
      expect(cleared.taskIds).toEqual(["load"]);
      expect(airflow.requests.at(-1)!.body).toMatchObject({ dry_run: false, only_failed: true, dag_run_id: "latchkey__req2" });
      expect((await client().getDagRun("settlement", "latchkey__req2")).state).toBe("queued");
    });

    it("turns Airflow's errors into messages a person understands", async () => {
      await expect(client().triggerDagRun({ dagId: "nope", runId: "x", conf: {}, note: "" })).rejects.toMatchObject({ status: 404, message: expect.stringContaining("Airflow does not know it (404) while trying to start DAG nope") });
      await expect(client("latchkey", "wrong").getDagRun("settlement", "latchkey__req1")).rejects.toMatchObject({ status: 401, message: expect.stringContaining("refused Latchkey's credentials") });
      await expect(client("viewer").triggerDagRun({ dagId: "settlement", runId: "y", conf: {}, note: "" })).rejects.toMatchObject({ status: 403, message: expect.stringContaining("may not start DAG settlement (403)") });
      await expect(client().getDagRun("settlement", "missing-run")).rejects.toMatchObject({ status: 404 });
    });

    if (version === "v2") {
      it("the fake is as strict as Airflow 3: unknown fields and a missing logical_date are refused with 422", async () => {
        const token = ((await (await fetch(`${airflow.url}/auth/token`, { method: "POST", body: JSON.stringify({ username: "latchkey", password: "secret" }) })).json()) as { access_token: string }).access_token;
        const post = (body: unknown) => fetch(`${airflow.url}/api/v2/dags/settlement/dagRuns`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
        expect((await post({ dag_run_id: "z", execution_date: "2026-01-01" })).status).toBe(422);
        expect((await post({ dag_run_id: "z" })).status).toBe(422);
        expect((await post({ dag_run_id: "z", logical_date: null })).status).toBe(200);
      });
    }
  });
}
