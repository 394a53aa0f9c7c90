import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { airflowClient, AirflowError, type AirflowApiVersion } from "@/lib/integrations/airflow/client";
import { reasonOf } from "@/lib/integrations/airflow/errors";
import { startFakeAirflow, type FakeAirflow } from "../fakes/airflow";

for (const version of ["v1", "v2"] as AirflowApiVersion[]) {
  describe(`Airflow client against the ${version} API`, () => {
    let airflow: FakeAirflow;
    const users = {
      latchkey: { password: "secret", canWrite: true, canEditDag: true },
      runner: { password: "secret", canWrite: true },
      viewer: { password: "secret", canWrite: false },
    };
    beforeAll(async () => {
      airflow = await startFakeAirflow({
        version,
        dags: { settlement: { tasks: ["extract", "load", "report"] }, fresh: { tasks: ["only"], paused: true } },
        users,
      });
    });
    afterAll(() => airflow?.close());
    const client = (username = "latchkey", password = "secret", fetchImpl: typeof fetch = fetch) =>
      airflowClient({ baseUrl: airflow.url, version, username, password }, fetchImpl);
    const lastCall = (suffix: string) => airflow.requests.filter((r) => r.path.endsWith(suffix)).at(-1)!;

    it("triggers a run with the request's run id, conf and note as JSON; a retry finds the same run", async () => {
      const run = await client().triggerDagRun({ dagId: "settlement", runId: "latchkey__req1", conf: { day: "2026-11-24" }, note: "Latchkey request req1" });
      expect(run).toEqual({ dagId: "settlement", runId: "latchkey__req1", state: "queued", created: true });
      const sent = lastCall("/dagRuns");
      expect(sent).toMatchObject({ method: "POST", contentType: "application/json", status: 200 });
      expect(sent.body).toEqual(
        version === "v2"
          ? { dag_run_id: "latchkey__req1", logical_date: null, conf: { day: "2026-11-24" }, note: "Latchkey request req1" }
          : { dag_run_id: "latchkey__req1", conf: { day: "2026-11-24" }, note: "Latchkey request req1" },
      );
      const again = await client().triggerDagRun({ dagId: "settlement", runId: "latchkey__req1", conf: {}, note: "retry" });
      expect(again).toMatchObject({ runId: "latchkey__req1", created: false });
      expect(lastCall("/dagRuns").status).toBe(409);
      expect([...airflow.runs.keys()].filter((k) => k.endsWith("latchkey__req1"))).toHaveLength(1);
    });

    it("restarts exactly the failed tasks named in task_ids, widened upstream or downstream as asked", async () => {
      await client().triggerDagRun({ dagId: "settlement", runId: "latchkey__req2", conf: {}, note: "" });
      airflow.failTasks("settlement", "latchkey__req2", ["load"]);
      expect((await client().getDagRun("settlement", "latchkey__req2")).state).toBe("failed");
      const failed = await client().restartableTaskIds("settlement", "latchkey__req2");
      expect(failed.sort()).toEqual(["load", "report"]);
      const scope = { dagId: "settlement", runId: "latchkey__req2", taskIds: failed };
      const upstream = await client().clearTasks({ ...scope, includeUpstream: true, includeDownstream: false, dryRun: true });
      expect(upstream.taskIds.sort()).toEqual(["extract", "load", "report"]);
      expect((await client().clearTasks({ ...scope, taskIds: ["load"], includeUpstream: false, includeDownstream: false, dryRun: true })).taskIds).toEqual([
        "load",
      ]);
      expect((await client().getDagRun("settlement", "latchkey__req2")).state).toBe("failed");
      const cleared = await client().clearTasks({ ...scope, includeUpstream: false, includeDownstream: false, dryRun: false });
      expect(cleared.taskIds.sort()).toEqual(["load", "report"]);
      expect(lastCall("/clearTaskInstances").body).toEqual({
        dry_run: false,
        dag_run_id: "latchkey__req2",
        task_ids: ["load", "report"],
        include_upstream: false,
        include_downstream: false,
        only_failed: false,
        reset_dag_runs: true,
      });
      expect(airflow.runs.get("settlement/latchkey__req2")!.tasks.map((t) => t.state)).toEqual(["success", null, null]);
      expect((await client().getDagRun("settlement", "latchkey__req2")).state).toBe("queued");
    });

    it("reads whether a DAG is paused and unpauses it with the edit permission only", async () => {
      expect(await client().getDag("fresh")).toEqual({ dagId: "fresh", isPaused: true });
      await expect(client("runner").unpauseDag("fresh")).rejects.toMatchObject({
        status: 403,
        retryable: false,
        message: expect.stringContaining("may not unpause DAG fresh (403)"),
      });
      await client().unpauseDag("fresh");
      expect(lastCall("/dags/fresh")).toMatchObject({ method: "PATCH", query: "?update_mask=is_paused", body: { is_paused: false }, status: 200 });
      expect(await client().getDag("fresh")).toEqual({ dagId: "fresh", isPaused: false });
    });

    it("turns Airflow's errors into messages a person understands", async () => {
      await expect(client().triggerDagRun({ dagId: "nope", runId: "x", conf: {}, note: "" })).rejects.toMatchObject({
        status: 404,
        retryable: false,
        message: expect.stringContaining("Airflow does not know it (404) while trying to start DAG nope"),
      });
      await expect(client("latchkey", "wrong").getDagRun("settlement", "latchkey__req1")).rejects.toMatchObject({
        status: 401,
        retryable: false,
        message: expect.stringContaining("refused Latchkey's credentials"),
      });
      await expect(client("viewer").triggerDagRun({ dagId: "settlement", runId: "y", conf: {}, note: "" })).rejects.toMatchObject({
        status: 403,
        message: expect.stringContaining("may not start DAG settlement (403)"),
      });
      await expect(client().getDagRun("settlement", "missing-run")).rejects.toMatchObject({ status: 404, message: expect.stringContaining("missing-run") });
    });

    it("reads the reason in the version's own error bodies", async () => {
      const authorization =
        version === "v1"
          ? `Basic ${Buffer.from("latchkey:secret").toString("base64")}`
          : `Bearer ${((await (await fetch(`${airflow.url}/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "latchkey", password: "secret" }) })).json()) as { access_token: string }).access_token}`;
      const refused = await fetch(`${airflow.url}/api/${version}/dags/settlement/dagRuns`, {
        method: "POST",
        headers: { authorization, "content-type": "application/json" },
        body: JSON.stringify({ dag_run_id: "bad", conf: "text", extra: 1 }),
      });
      const reason = reasonOf(await refused.text());
      if (version === "v1") expect(reason).toBe("'text' is not of type 'object' - 'conf'");
      else expect(reason).toBe("logical_date: Field required; conf: Input should be a valid dictionary; extra: Extra inputs are not permitted");
      const duplicate = await fetch(`${airflow.url}/api/${version}/dags/settlement/dagRuns`, {
        method: "POST",
        headers: { authorization, "content-type": "application/json" },
        body: JSON.stringify({ dag_run_id: "latchkey__req1", ...(version === "v2" ? { logical_date: null } : {}) }),
      });
      expect(reasonOf(await duplicate.text())).toMatch(version === "v1" ? /already exists/ : /Unique constraint violation/);
    });

    if (version === "v2") {
      it("keeps a token until its exp, signs in again once after a 401, and gives up with a retryable error when the fresh token is refused too", async () => {
        const signIns = () => airflow.requests.filter((r) => r.path === "/auth/token").length;
        const steady = client();
        const before = signIns();
        await steady.getDag("settlement");
        await steady.getDag("settlement");
        expect(signIns() - before).toBe(1);
        // The secret rotates behind the client's back: its cached token is refused, it signs in again once.
        airflow.rotateTokenSecret();
        await steady.getDag("settlement");
        expect(signIns() - before).toBe(2);
        expect(airflow.requests.slice(-3).map((r) => [r.path, r.status])).toEqual([
          ["/api/v2/dags/settlement", 401],
          ["/auth/token", 201],
          ["/api/v2/dags/settlement", 200],
        ]);
        // A second time, with a run started after the fresh sign-in.
        airflow.rotateTokenSecret();
        expect((await steady.triggerDagRun({ dagId: "settlement", runId: "latchkey__req3", conf: {}, note: "" })).created).toBe(true);
        expect(signIns() - before).toBe(3);

        // Every token refused (an API server that does not know the new secret yet): one retry, then a retryable error.
        const rotating: typeof fetch = async (input, init) => {
          const res = await fetch(input, init);
          if (String(input).endsWith("/auth/token")) airflow.rotateTokenSecret();
          return res;
        };
        const start = signIns();
        const error = await client("latchkey", "secret", rotating)
          .getDag("settlement")
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(AirflowError);
        expect(error).toMatchObject({ status: 401, retryable: true, message: expect.stringContaining("Invalid JWT token") });
        expect(signIns() - start).toBe(2);
      });

      it("reads the token's exp: a token about to end is replaced before it is sent", async () => {
        const short = await startFakeAirflow({ version, dags: { settlement: { tasks: ["a"] } }, users, tokenLifetimeSeconds: 20 });
        try {
          const c = airflowClient({ baseUrl: short.url, version, username: "latchkey", password: "secret" });
          await c.getDag("settlement");
          await c.getDag("settlement");
          // Twenty seconds is inside the client's margin: each call signs in, and no call is refused.
          expect(short.requests.map((r) => r.status)).toEqual([201, 200, 201, 200]);
        } finally {
          await short.close();
        }
      });
    }
  });
}
