import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeAirflow, type FakeAirflow } from "../fakes/airflow";

/**
 * The fake Airflow itself, against the cases Airflow's published documents and handlers
 * describe, so that a client bug cannot pass against a forgiving fake.
 */
const DAG = {
  tasks: ["extract", "transform", "load", "report", "audit"],
  downstream: { extract: ["transform"], transform: ["load"], load: ["report"], report: [], audit: [] },
};
const USERS = {
  latchkey: { password: "pw", canWrite: true, canEditDag: true },
  runner: { password: "pw", canWrite: true },
  viewer: { password: "pw", canWrite: false },
};

for (const version of ["v1", "v2"] as const) {
  describe(`fake Airflow ${version === "v1" ? "2.x (/api/v1)" : "3.x (/api/v2)"}`, () => {
    let airflow: FakeAirflow;
    const tokens = new Map<string, string>();
    beforeAll(async () => {
      airflow = await startFakeAirflow({ version, dags: { etl: DAG, fresh: { tasks: ["only"], paused: true } }, users: USERS });
    });
    afterAll(() => airflow?.close());

    async function auth(user: string): Promise<string> {
      if (version === "v1") return `Basic ${Buffer.from(`${user}:pw`).toString("base64")}`;
      if (!tokens.has(user)) {
        const res = await fetch(`${airflow.url}/auth/token`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: user, password: "pw" }),
        });
        tokens.set(user, ((await res.json()) as { access_token: string }).access_token);
      }
      return `Bearer ${tokens.get(user)}`;
    }
    async function api(method: string, path: string, body?: unknown, options: { user?: string; contentType?: string | null; raw?: string } = {}) {
      const headers: Record<string, string> = { authorization: await auth(options.user ?? "latchkey") };
      if (options.contentType !== null && (body !== undefined || options.raw !== undefined))
        headers["content-type"] = options.contentType ?? "application/json";
      const res = await fetch(`${airflow.url}/api/${version}${path}`, {
        method,
        headers,
        body: options.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      });
      return { status: res.status, contentType: res.headers.get("content-type"), body: (await res.json()) as Record<string, unknown> & { detail: unknown } };
    }
    const trigger = (runId: string, extra: Record<string, unknown> = {}) =>
      api("POST", "/dags/etl/dagRuns", { dag_run_id: runId, ...(version === "v2" ? { logical_date: null } : {}), ...extra });
    const clear = (body: Record<string, unknown>) => api("POST", "/dags/etl/clearTaskInstances", body);
    const cleared = (answer: { body: Record<string, unknown> }) => (answer.body.task_instances as { task_id: string }[]).map((t) => t.task_id).sort();
    const states = (runId: string) => Object.fromEntries(airflow.runs.get(`etl/${runId}`)!.tasks.map((t) => [t.task_id, t.state]));
    const errorShape =
      version === "v1"
        ? { type: expect.any(String), title: expect.any(String), status: expect.any(Number), detail: expect.anything() }
        : { detail: expect.anything() };

    it("refuses unknown and read-only fields on a new run, in the version's error shape", async () => {
      const unknown = await trigger("r-unknown", { execution_timeout: 5 });
      if (version === "v1") {
        expect(unknown).toMatchObject({
          status: 400,
          contentType: "application/problem+json",
          body: { status: 400, title: "Bad Request", detail: "{'execution_timeout': ['Unknown field.']}" },
        });
        expect((await trigger("r-ro", { state: "success" })).body).toMatchObject({ status: 400, detail: "Property is read-only - 'state'" });
        expect((await trigger("r-ro", { dag_id: "other" })).body.detail).toBe("Property is read-only - 'dag_id'");
      } else {
        expect(unknown).toMatchObject({
          status: 422,
          body: { detail: [{ type: "extra_forbidden", loc: ["body", "execution_timeout"], msg: "Extra inputs are not permitted" }] },
        });
        expect((await trigger("r-ro", { state: "success" })).body.detail).toEqual([
          expect.objectContaining({ type: "extra_forbidden", loc: ["body", "state"] }),
        ]);
        const missing = await api("POST", "/dags/etl/dagRuns", { dag_run_id: "r-missing" });
        expect(missing).toMatchObject({ status: 422, body: { detail: [{ type: "missing", loc: ["body", "logical_date"], msg: "Field required" }] } });
      }
      expect(unknown.body).toMatchObject(errorShape);
      expect([...airflow.runs.keys()].filter((k) => /r-(unknown|ro|missing)/.test(k))).toEqual([]);
    });

    it("checks types: conf is an object, dates carry a time zone, booleans are booleans", async () => {
      const conf = await trigger("r-types", { conf: "day=1" });
      expect(conf.status).toBe(version === "v1" ? 400 : 422);
      expect(version === "v1" ? conf.body.detail : conf.body.detail).toEqual(
        version === "v1" ? "'day=1' is not of type 'object' - 'conf'" : [expect.objectContaining({ type: "dict_type", loc: ["body", "conf"] })],
      );
      if (version === "v2")
        expect((await trigger("r-naive", { logical_date: "2026-11-24T00:00:00" })).body.detail).toEqual([expect.objectContaining({ type: "timezone_aware" })]);
      // Pydantic reads "yes" as a boolean (lax mode); JSON Schema in 2.x does not.
      const lax = await clear({ dag_run_id: "nope", dry_run: "yes" });
      expect(lax.status).toBe(version === "v1" ? 400 : 404);
      const bad = await clear({ dry_run: "maybe" });
      expect(bad.status).toBe(version === "v1" ? 400 : 422);
      if (version === "v2") expect(bad.body.detail).toEqual([expect.objectContaining({ type: "bool_parsing", loc: ["body", "dry_run"] })]);
    });

    it("answers a body without a JSON content type with 415 (2.x) or 422 (3.x), and starts nothing", async () => {
      const plain = await api("POST", "/dags/etl/dagRuns", undefined, {
        raw: JSON.stringify({ dag_run_id: "r-plain", logical_date: null }),
        contentType: "text/plain",
      });
      const none = await api("POST", "/dags/etl/dagRuns", undefined, { raw: JSON.stringify({ dag_run_id: "r-plain", logical_date: null }), contentType: null });
      for (const answer of [plain, none]) {
        if (version === "v1") expect(answer).toMatchObject({ status: 415, body: { title: "Unsupported Media Type" } });
        else expect(answer).toMatchObject({ status: 422, body: { detail: [{ type: "model_attributes_type", loc: ["body"] }] } });
      }
      expect(airflow.runs.has("etl/r-plain")).toBe(false);
      if (version === "v2") {
        const token = await fetch(`${airflow.url}/auth/token`, { method: "POST", body: JSON.stringify({ username: "latchkey", password: "pw" }) });
        expect(token.status).toBe(422);
      }
    });

    it("a new run starts queued with its conf and note; the same run id again is a 409", async () => {
      const first = await trigger("r-dup", { conf: { day: "2026-11-24" }, note: "why" });
      expect(first).toMatchObject({ status: 200, body: { dag_run_id: "r-dup", state: "queued", conf: { day: "2026-11-24" }, note: "why" } });
      // 2.x gives a run without a logical date the current time; 3.x keeps it null.
      if (version === "v1") expect(Date.parse(String(first.body.logical_date))).toBeGreaterThan(Date.now() - 60_000);
      else expect(first.body.logical_date).toBeNull();
      const again = await trigger("r-dup");
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject(errorShape);
      if (version === "v1") expect((await trigger("r-same-date", { logical_date: first.body.logical_date })).status).toBe(409);
    });

    it("a run on a paused DAG stays queued until the DAG is unpaused; unpausing takes the edit permission and only is_paused", async () => {
      expect((await api("GET", "/dags/fresh")).body).toMatchObject({ dag_id: "fresh", is_paused: true });
      await api("POST", "/dags/fresh/dagRuns", { dag_run_id: "r-paused", ...(version === "v2" ? { logical_date: null } : {}) });
      airflow.schedule();
      expect(airflow.runs.get("fresh/r-paused")!.state).toBe("queued");
      expect((await api("PATCH", "/dags/fresh?update_mask=is_paused", { is_paused: false }, { user: "runner" })).status).toBe(403);
      expect((await api("PATCH", "/dags/fresh?update_mask=max_active_tasks", { is_paused: false })).status).toBe(400);
      const extra = await api("PATCH", "/dags/fresh?update_mask=is_paused", { is_paused: false, max_active_tasks: 2 });
      expect(extra.status).toBe(version === "v1" ? 400 : 422);
      const readOnly = await api("PATCH", "/dags/fresh", { is_paused: false, dag_id: "x" });
      expect(readOnly.status).toBe(version === "v1" ? 400 : 422);
      expect(airflow.paused.get("fresh")).toBe(true);
      const unpaused = await api("PATCH", "/dags/fresh?update_mask=is_paused", { is_paused: false });
      expect(unpaused).toMatchObject({ status: 200, body: { is_paused: false } });
      airflow.schedule();
      expect(airflow.runs.get("fresh/r-paused")!.state).toBe("running");
    });

    it("only_failed touches failed and upstream_failed tasks; upstream and downstream widen only a list of named tasks", async () => {
      await trigger("r-scope");
      airflow.failTasks("etl", "r-scope", ["transform"]);
      expect(states("r-scope")).toEqual({ extract: "success", transform: "failed", load: "upstream_failed", report: "upstream_failed", audit: "success" });
      const dry = { dag_run_id: "r-scope", dry_run: true };
      expect(cleared(await clear({ ...dry }))).toEqual(["load", "report", "transform"]);
      // Without task_ids, the flags change nothing: Airflow ignores them.
      expect(cleared(await clear({ ...dry, include_upstream: true, include_downstream: true }))).toEqual(["load", "report", "transform"]);
      expect(cleared(await clear({ ...dry, only_failed: false, include_upstream: true }))).toEqual(["audit", "extract", "load", "report", "transform"]);
      expect(cleared(await clear({ ...dry, only_failed: false, task_ids: ["transform"] }))).toEqual(["transform"]);
      expect(cleared(await clear({ ...dry, only_failed: false, task_ids: ["transform"], include_upstream: true }))).toEqual(["extract", "transform"]);
      expect(cleared(await clear({ ...dry, only_failed: false, task_ids: ["transform"], include_downstream: true }))).toEqual(["load", "report", "transform"]);
      // With only_failed on, the successful upstream task is named but not cleared.
      expect(cleared(await clear({ ...dry, task_ids: ["transform"], include_upstream: true }))).toEqual(["transform"]);
      expect(cleared(await clear({ ...dry, only_failed: false, only_running: true }))).toEqual([]);
      if (version === "v2") expect((await clear({ ...dry, task_ids: [["transform", -1]] })).status).toBe(200);
      expect(states("r-scope").transform).toBe("failed");
    });

    it("a clear is a dry run unless told otherwise; reset_dag_runs defaults to false in 2.x and true in 3.x", async () => {
      await trigger("r-reset");
      airflow.failTasks("etl", "r-reset", ["load"]);
      const preview = await clear({ dag_run_id: "r-reset" });
      expect(cleared(preview)).toEqual(["load", "report"]);
      expect(states("r-reset").load).toBe("failed");
      if (version === "v1") expect(preview.body).toEqual({ task_instances: expect.any(Array) });
      else expect(preview.body).toMatchObject({ total_entries: 2 });
      await clear({ dag_run_id: "r-reset", dry_run: false, task_ids: ["load"] });
      expect(states("r-reset")).toMatchObject({ extract: "success", load: null, report: "upstream_failed" });
      expect(airflow.runs.get("etl/r-reset")!.state).toBe(version === "v1" ? "failed" : "queued");
      await clear({ dag_run_id: "r-reset", dry_run: false, reset_dag_runs: true });
      expect(airflow.runs.get("etl/r-reset")!.state).toBe("queued");
      expect(states("r-reset").report).toBeNull();
    });

    it("refuses what each version's clear form refuses, and answers 404 for an unknown run", async () => {
      const unknownRun = await clear({ dag_run_id: "no-such-run", dry_run: true });
      expect(unknownRun).toMatchObject({ status: 404, body: errorShape });
      expect(unknownRun.body.detail).toBe("Dag Run id no-such-run not found in dag etl");
      if (version === "v1") {
        expect((await clear({ only_failed: true, only_running: true })).body.detail).toBe("{'_schema': ['only_failed and only_running both are set to True']}");
        expect((await clear({ task_ids: [] })).body.detail).toBe("{'task_ids': ['Shorter than minimum length 1.']}");
        expect((await clear({ include_subdags: true })).body.detail).toBe("{'include_subdags': ['Unknown field.']}");
      } else {
        expect((await clear({ include_subdags: true })).body.detail).toEqual([
          expect.objectContaining({ type: "extra_forbidden", loc: ["body", "include_subdags"] }),
        ]);
      }
      expect((await api("POST", "/dags/etl/clearTaskInstances", { dry_run: true }, { user: "viewer" })).status).toBe(403);
    });

    it("lists a run's task instances by state, a page at a time", async () => {
      await trigger("r-list");
      airflow.failTasks("etl", "r-list", ["extract"]);
      const page = await api("GET", "/dags/etl/dagRuns/r-list/taskInstances?state=failed&state=upstream_failed&limit=2&offset=0");
      expect(page.body).toMatchObject({ total_entries: 4 });
      expect(cleared(page)).toEqual(["extract", "transform"]);
      expect(cleared(await api("GET", "/dags/etl/dagRuns/r-list/taskInstances?state=failed&state=upstream_failed&limit=2&offset=2"))).toEqual([
        "load",
        "report",
      ]);
      const missing = await api("GET", "/dags/etl/dagRuns/no-such-run/taskInstances?state=failed");
      // 2.x filters without checking that the run exists; 3.x answers 404.
      if (version === "v1") expect(missing).toMatchObject({ status: 200, body: { task_instances: [], total_entries: 0 } });
      else expect(missing.status).toBe(404);
    });

    it("refuses wrong credentials with 401 in the version's shape", async () => {
      const res = await fetch(`${airflow.url}/api/${version}/dags/etl`, {
        headers: { authorization: version === "v1" ? `Basic ${Buffer.from("latchkey:wrong").toString("base64")}` : "Bearer not-a-token" },
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject(errorShape);
    });

    if (version === "v2") {
      it("issues JWTs from /auth/token that end at their exp, or at once when the signing secret rotates", async () => {
        const short = await startFakeAirflow({ version, dags: { etl: DAG }, users: USERS, tokenLifetimeSeconds: 1 });
        try {
          const wrong = await fetch(`${short.url}/auth/token`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ username: "latchkey", password: "nope" }),
          });
          expect(wrong.status).toBe(401);
          expect(await wrong.json()).toEqual({ detail: "Invalid credentials" });
          const issue = async () => {
            const res = await fetch(`${short.url}/auth/token`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ username: "latchkey", password: "pw" }),
            });
            expect(res.status).toBe(201);
            return ((await res.json()) as { access_token: string }).access_token;
          };
          const get = (token: string) => fetch(`${short.url}/api/v2/dags/etl`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
          const token = await issue();
          const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number; sub: string };
          expect(claims.sub).toBe("latchkey");
          expect(claims.exp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
          expect(await get(token)).toBe(200);
          await expect.poll(() => get(token), { timeout: 5_000, interval: 200 }).toBe(401);
        } finally {
          await short.close();
        }
        // A token with a day left ends at once when the secret rotates.
        const live = await auth("latchkey");
        expect((await fetch(`${airflow.url}/api/v2/dags/etl`, { headers: { authorization: live } })).status).toBe(200);
        airflow.rotateTokenSecret();
        const refused = await fetch(`${airflow.url}/api/v2/dags/etl`, { headers: { authorization: live } });
        expect(refused.status).toBe(401);
        expect(await refused.json()).toEqual({ detail: "Invalid JWT token" });
      });
    }
  });
}
