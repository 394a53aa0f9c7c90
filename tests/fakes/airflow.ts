import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small fake of Apache Airflow's stable REST API for the endpoints Latchkey uses, following
 * the published OpenAPI specifications: Airflow 2 (`/api/v1`, basic auth, lenient bodies)
 * and Airflow 3 (`/api/v2`, bearer tokens from `POST /auth/token`, bodies that forbid unknown
 * fields and require `logical_date`, 422 validation errors). Errors use each version's shape.
 */
export interface FakeTask {
  task_id: string;
  state: string | null;
}

export interface FakeDag {
  tasks: string[];
}

export interface FakeAirflow {
  url: string;
  /** Every call: who made it (once signed in), and the status answered once the answer went out (none while it is held). */
  requests: { method: string; path: string; body: unknown; user?: string; status?: number }[];
  runs: Map<string, { dag_id: string; dag_run_id: string; state: string; conf: unknown; note: string | null; logical_date: string | null; tasks: FakeTask[] }>;
  failTasks(dagId: string, runId: string, taskIds: string[]): void;
  /** Like a slow Airflow whose API has already created the run: it exists at once, its answer comes `ms` later (0: at once). */
  holdTriggerAnswers(ms: number): void;
  close(): Promise<void>;
}

const TRIGGER_V2_FIELDS = new Set(["dag_run_id", "data_interval_start", "data_interval_end", "logical_date", "run_after", "conf", "note"]);
const CLEAR_V2_FIELDS = new Set(["dry_run", "start_date", "end_date", "only_failed", "only_running", "reset_dag_runs", "task_ids", "dag_run_id", "include_upstream", "include_downstream", "include_future", "include_past", "run_on_latest_version"]);

export async function startFakeAirflow(options: { version: "v1" | "v2"; dags: Record<string, FakeDag>; users: Record<string, { password: string; canWrite: boolean }> }): Promise<FakeAirflow> {
  const requests: FakeAirflow["requests"] = [];
  const runs: FakeAirflow["runs"] = new Map();
  const tokens = new Map<string, string>();
  let triggerHoldMs = 0;
  const key = (dagId: string, runId: string) => `${dagId}/${runId}`;

  const problem = (res: http.ServerResponse, status: number, detail: unknown) => {
    res.writeHead(status, { "content-type": options.version === "v1" ? "application/problem+json" : "application/json" });
    res.end(JSON.stringify(options.version === "v1" ? { detail, status, title: http.STATUS_CODES[status], type: "about:blank" } : { detail }));
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const userOf = (req: http.IncomingMessage): string | undefined => {
    const header = req.headers.authorization ?? "";
    if (options.version === "v1" && header.startsWith("Basic ")) {
      const [name, password] = Buffer.from(header.slice(6), "base64").toString().split(":");
      return name && options.users[name]?.password === password ? name : undefined;
    }
    if (options.version === "v2" && header.startsWith("Bearer ")) return tokens.get(header.slice(7));
    return undefined;
  };
  const unknownFields = (body: Record<string, unknown>, allowed: Set<string>) => Object.keys(body).filter((k) => !allowed.has(k));

  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://fake");
      let body: Record<string, unknown> = {};
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      } catch {
        return problem(res, options.version === "v1" ? 400 : 422, "body is not JSON");
      }
      const call: FakeAirflow["requests"][number] = { method: req.method ?? "", path: url.pathname, body };
      requests.push(call);
      res.on("finish", () => (call.status = res.statusCode));

      if (options.version === "v2" && req.method === "POST" && url.pathname === "/auth/token") {
        const user = options.users[String(body.username)];
        if (!user || user.password !== body.password) return problem(res, 401, "Invalid credentials");
        const token = `tok-${Math.random().toString(36).slice(2)}`;
        tokens.set(token, String(body.username));
        return json(res, 201, { access_token: token });
      }
      const prefix = `/api/${options.version}`;
      if (!url.pathname.startsWith(prefix)) return problem(res, 404, "Not Found");
      const user = userOf(req);
      if (!user) return problem(res, 401, "Not authenticated");
      call.user = user;
      const path = url.pathname.slice(prefix.length);
      const m = /^\/dags\/([^/]+)\/(dagRuns|clearTaskInstances)(?:\/([^/]+))?$/.exec(path);
      if (!m) return problem(res, 404, "Not Found");
      const dagId = decodeURIComponent(m[1]!);
      const dag = options.dags[dagId];
      if (!dag) return problem(res, 404, `The Dag with ID: \`${dagId}\` was not found`);
      const writes = req.method === "POST";
      if (writes && !options.users[user]!.canWrite) return problem(res, 403, "Forbidden");

      if (m[2] === "dagRuns" && req.method === "POST" && !m[3]) {
        if (options.version === "v2") {
          const extra = unknownFields(body, TRIGGER_V2_FIELDS);
          const missing = "logical_date" in body ? [] : ["logical_date"];
          if (extra.length || missing.length) {
            return problem(res, 422, [...extra.map((f) => ({ type: "extra_forbidden", loc: ["body", f], msg: "Extra inputs are not permitted" })), ...missing.map((f) => ({ type: "missing", loc: ["body", f], msg: "Field required" }))]);
          }
        }
        const runId = String(body.dag_run_id ?? `manual__${new Date().toISOString()}`);
        if (runs.has(key(dagId, runId))) return problem(res, 409, `DAG Run with DAG ID: '${dagId}' and DAG Run ID: '${runId}' already exists`);
        const run = { dag_id: dagId, dag_run_id: runId, state: "queued", conf: body.conf ?? {}, note: (body.note as string) ?? null, logical_date: (body.logical_date as string) ?? null, tasks: dag.tasks.map((t) => ({ task_id: t, state: null })) };
        runs.set(key(dagId, runId), run);
        const { tasks: _, ...response } = run;
        if (triggerHoldMs > 0) return void setTimeout(() => json(res, 200, response), triggerHoldMs);
        return json(res, 200, response);
      }
      if (m[2] === "dagRuns" && req.method === "GET" && m[3]) {
        const run = runs.get(key(dagId, decodeURIComponent(m[3])));
        if (!run) return problem(res, 404, `DagRun with DAG ID: '${dagId}' and DagRun ID: '${m[3]}' not found`);
        const { tasks: _, ...response } = run;
        return json(res, 200, response);
      }
      if (m[2] === "clearTaskInstances" && req.method === "POST") {
        if (options.version === "v2") {
          const extra = unknownFields(body, CLEAR_V2_FIELDS);
          if (extra.length) return problem(res, 422, extra.map((f) => ({ type: "extra_forbidden", loc: ["body", f], msg: "Extra inputs are not permitted" })));
        }
        const run = runs.get(key(dagId, String(body.dag_run_id)));
        if (!run) return problem(res, 404, `Dag Run id ${String(body.dag_run_id)} not found in dag ${dagId}`);
        const onlyFailed = body.only_failed !== false;
        const selected = run.tasks.filter((t) => !onlyFailed || t.state === "failed");
        const dryRun = body.dry_run !== false; // the published default is a dry run
        if (!dryRun) {
          for (const t of selected) t.state = null;
          if (selected.length && body.reset_dag_runs !== false) run.state = "queued";
        }
        return json(res, 200, { task_instances: selected.map((t) => ({ task_id: t.task_id, dag_id: dagId, dag_run_id: run.dag_run_id, state: t.state })), total_entries: selected.length });
      }
      return problem(res, 405, "Method Not Allowed");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    runs,
    failTasks(dagId, runId, taskIds) {
      const run = runs.get(key(dagId, runId))!;
      for (const t of run.tasks) if (taskIds.includes(t.task_id)) t.state = "failed";
      run.state = "failed";
    },
    holdTriggerAnswers(ms) {
      triggerHoldMs = ms;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
