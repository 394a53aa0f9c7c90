import { createHmac, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { BODIES, CLEAR_DEFAULTS, problem, readJson, validateBody, type Refusal, type Version } from "./airflow-bodies";

/**
 * A fake of Apache Airflow's stable REST API for every endpoint Latchkey's client uses,
 * held to what Airflow enforces in each version (bodies: ./airflow-bodies.ts):
 *
 * - Airflow 2.10, `/api/v1`, the basic-auth backend (`airflow.api.auth.backend.basic_auth`);
 *   errors as problem details `{type, title, status, detail}`.
 * - Airflow 3.0/3.1, `/api/v2`, JWT bearer tokens from `POST /auth/token` (201
 *   `{access_token}`) that end at their `exp` or earlier when the signing secret changes;
 *   errors as FastAPI's `{detail}`.
 *
 * Behaviour follows the handlers (`api_connexion/endpoints/*` in 2.10,
 * `api_fastapi/core_api/routes/public/*` in 3.x): new runs start `queued` and the
 * scheduler (`schedule()`) starts only those of unpaused DAGs; a clear reads `task_ids`
 * and applies `include_upstream`/`include_downstream` only together with them, filters
 * by `only_failed` (failed, upstream_failed) or `only_running`, extends to other runs with
 * `include_past`/`include_future`, changes nothing on a `dry_run` (the default), and with
 * `reset_dag_runs` (default false in 2.x, true in 3.x) puts finished runs back to queued.
 */
export interface FakeTask {
  task_id: string;
  state: string | null;
}

export interface FakeDag {
  tasks: string[];
  /** Each task's direct downstream tasks; without it, the tasks form a chain in the order given. */
  downstream?: Record<string, string[]>;
  /** New DAGs start paused in Airflow unless configured otherwise. */
  paused?: boolean;
}

export interface FakeRun {
  dag_id: string;
  dag_run_id: string;
  state: string;
  conf: unknown;
  note: string | null;
  logical_date: string | null;
  queued_at: string;
  tasks: FakeTask[];
}

export interface FakeUser {
  password: string;
  /** May trigger runs and clear task instances. */
  canWrite: boolean;
  /** May edit DAGs (unpause). */
  canEditDag?: boolean;
}

export interface FakeAirflow {
  url: string;
  /** Every call: who made it (once signed in), and the status answered once the answer went out (none while it is held). */
  requests: { method: string; path: string; query: string; contentType?: string; body: unknown; user?: string; status?: number }[];
  runs: Map<string, FakeRun>;
  /** Whether each DAG is paused, as Airflow stores it. */
  paused: Map<string, boolean>;
  /** Ends a run as Airflow would when these tasks fail: their downstream tasks upstream_failed, the others success. */
  failTasks(dagId: string, runId: string, taskIds: string[]): void;
  /** One scheduler loop: queued runs of unpaused DAGs start running; runs of paused DAGs stay queued. */
  schedule(): void;
  /** Changes the token signing secret, as a rotation does: every token issued so far is refused. */
  rotateTokenSecret(): void;
  /** Like a slow Airflow whose API has already created the run: it exists at once, its answer comes `ms` later (0: at once). */
  holdTriggerAnswers(ms: number): void;
  close(): Promise<void>;
}

export async function startFakeAirflow(options: {
  version: Version;
  dags: Record<string, FakeDag>;
  users: Record<string, FakeUser>;
  tokenLifetimeSeconds?: number;
}): Promise<FakeAirflow> {
  const { version } = options;
  const requests: FakeAirflow["requests"] = [];
  const runs: FakeAirflow["runs"] = new Map();
  const paused = new Map(Object.entries(options.dags).map(([id, dag]) => [id, dag.paused ?? false]));
  let secret = randomBytes(32);
  let triggerHoldMs = 0;
  const key = (dagId: string, runId: string) => `${dagId}/${runId}`;
  const downstreamOf = (dag: FakeDag, task: string) =>
    dag.downstream?.[task] ?? (dag.downstream ? [] : dag.tasks.slice(dag.tasks.indexOf(task) + 1, dag.tasks.indexOf(task) + 2));
  const closure = (dag: FakeDag, start: string[], next: (task: string) => string[]) => {
    const seen = new Set<string>();
    const walk = (t: string) => next(t).forEach((n) => !seen.has(n) && (seen.add(n), walk(n)));
    start.forEach(walk);
    return seen;
  };
  const descendants = (dag: FakeDag, start: string[]) => closure(dag, start, (t) => downstreamOf(dag, t));
  const ancestors = (dag: FakeDag, start: string[]) => closure(dag, start, (t) => dag.tasks.filter((u) => downstreamOf(dag, u).includes(t)));

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": version === "v1" && status >= 400 ? "application/problem+json" : "application/json" });
    res.end(JSON.stringify(body));
  };
  const refuse = (res: http.ServerResponse, refusal: Refusal) => send(res, refusal.status, refusal.body);
  /** An error in the version's shape: problem details in 2.x, `{detail}` in 3.x. */
  const fail = (res: http.ServerResponse, status: number, detail: unknown) =>
    refuse(res, version === "v1" ? problem(status, http.STATUS_CODES[status] ?? "Error", detail) : { status, body: { detail } });

  const sign = (payload: object) => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const unsigned = `${part({ alg: "HS512", typ: "JWT" })}.${part(payload)}`;
    return `${unsigned}.${createHmac("sha512", secret).update(unsigned).digest("base64url")}`;
  };
  const verify = (token: string): string | undefined => {
    const [header, payload, signature] = token.split(".");
    if (!header || !payload || !signature) return undefined;
    if (createHmac("sha512", secret).update(`${header}.${payload}`).digest("base64url") !== signature) return undefined;
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as { sub: string; exp: number };
    return claims.exp * 1000 > Date.now() ? claims.sub : undefined;
  };
  const userOf = (req: http.IncomingMessage): string | undefined => {
    const header = req.headers.authorization ?? "";
    if (version === "v1" && header.startsWith("Basic ")) {
      const [name, password] = Buffer.from(header.slice(6), "base64").toString().split(":");
      return name && options.users[name]?.password === password ? name : undefined;
    }
    if (version === "v2" && header.startsWith("Bearer ")) return verify(header.slice(7));
    return undefined;
  };

  const runView = (run: FakeRun) => {
    const { tasks: _, ...rest } = run;
    return version === "v1"
      ? { ...rest, execution_date: run.logical_date, run_type: "manual", external_trigger: true }
      : { ...rest, run_type: "manual", triggered_by: "rest_api", run_after: run.queued_at };
  };
  const taskView = (run: FakeRun, t: FakeTask) => ({
    task_id: t.task_id,
    dag_id: run.dag_id,
    dag_run_id: run.dag_run_id,
    map_index: -1,
    state: t.state,
    ...(version === "v1" ? { execution_date: run.logical_date } : { logical_date: run.logical_date }),
  });
  const dagView = (dagId: string) => ({
    dag_id: dagId,
    is_paused: paused.get(dagId) ?? false,
    ...(version === "v1" ? { is_active: true } : { is_stale: false }),
    fileloc: `/opt/airflow/dags/${dagId}.py`,
  });

  function trigger(res: http.ServerResponse, dagId: string, dag: FakeDag, body: Record<string, unknown>) {
    const checked = validateBody(version, BODIES[version].trigger, body);
    if (!checked.ok) return refuse(res, checked.refusal);
    const input = checked.value;
    if ("data_interval_start" in input !== "data_interval_end" in input)
      return fail(
        res,
        version === "v1" ? 400 : 422,
        version === "v1"
          ? "{'_schema': ['Both of data_interval_start and data_interval_end must be given']}"
          : [
              {
                type: "value_error",
                loc: ["body"],
                msg: "Value error, Either both data_interval_start and data_interval_end must be provided or both must be None",
              },
            ],
      );
    const now = new Date().toISOString();
    // Airflow 2 gives a run without a logical date the current time; Airflow 3 keeps null.
    const logicalDate = version === "v1" ? String(input.logical_date ?? input.execution_date ?? now) : ((input.logical_date as string | null) ?? null);
    const runId = String(input.dag_run_id ?? `manual__${logicalDate ?? now}`);
    if (runs.has(key(dagId, runId))) {
      if (version === "v1") return fail(res, 409, `DAGRun with DAG ID: '${dagId}' and DAGRun ID: '${runId}' already exists`);
      return fail(res, 409, {
        reason: "Unique constraint violation",
        statement: "INSERT INTO dag_run (...)",
        orig_error: 'duplicate key value violates unique constraint "dag_run_dag_id_run_id_key"',
      });
    }
    if (logicalDate && [...runs.values()].some((r) => r.dag_id === dagId && r.logical_date === logicalDate)) {
      return fail(res, 409, `DAGRun with DAG ID: '${dagId}' and DAGRun logical date: '${logicalDate}' already exists`);
    }
    const run: FakeRun = {
      dag_id: dagId,
      dag_run_id: runId,
      state: "queued",
      conf: input.conf ?? {},
      note: (input.note as string | null) ?? null,
      logical_date: logicalDate,
      queued_at: now,
      tasks: dag.tasks.map((t) => ({ task_id: t, state: null })),
    };
    runs.set(key(dagId, runId), run);
    if (triggerHoldMs > 0) return void setTimeout(() => send(res, 200, runView(run)), triggerHoldMs);
    return send(res, 200, runView(run));
  }

  function clear(res: http.ServerResponse, dagId: string, dag: FakeDag, body: Record<string, unknown>) {
    const checked = validateBody(version, BODIES[version].clear, body);
    if (!checked.ok) return refuse(res, checked.refusal);
    const c = { ...CLEAR_DEFAULTS[version], ...checked.value } as Record<string, unknown>;
    if (version === "v1") {
      if (c.only_failed && c.only_running) return fail(res, 400, "{'_schema': ['only_failed and only_running both are set to True']}");
      if (Array.isArray(c.task_ids) && c.task_ids.length === 0) return fail(res, 400, "{'task_ids': ['Shorter than minimum length 1.']}");
      if (c.dag_run_id && (c.start_date || c.end_date)) return fail(res, 400, "{'_schema': ['Exactly one of dag_run_id or start_date must be provided']}");
    }
    const dagRuns = [...runs.values()].filter((r) => r.dag_id === dagId);
    let selectedRuns = dagRuns;
    if (c.dag_run_id != null) {
      const index = dagRuns.findIndex((r) => r.dag_run_id === c.dag_run_id);
      if (index < 0) return fail(res, 404, `Dag Run id ${String(c.dag_run_id)} not found in dag ${dagId}`);
      selectedRuns = dagRuns.filter((_, i) => i === index || (c.include_past && i < index) || (c.include_future && i > index));
    }
    // Upstream and downstream only widen a list of named tasks; without one, every task is a candidate.
    let taskIds = new Set(dag.tasks);
    if (Array.isArray(c.task_ids)) {
      const named = (c.task_ids as (string | [string, number])[]).map((t) => (Array.isArray(t) ? t[0] : t));
      taskIds = new Set([...named, ...(c.include_upstream ? ancestors(dag, named) : []), ...(c.include_downstream ? descendants(dag, named) : [])]);
    }
    const states = c.only_failed ? ["failed", "upstream_failed"] : c.only_running ? ["running"] : undefined;
    const cleared = selectedRuns.flatMap((run) =>
      run.tasks.filter((t) => taskIds.has(t.task_id) && (!states || states.includes(t.state ?? ""))).map((t) => ({ run, t })),
    );
    const answer = cleared.map(({ run, t }) =>
      version === "v1" ? { task_id: t.task_id, dag_id: dagId, dag_run_id: run.dag_run_id, execution_date: run.logical_date } : taskView(run, t),
    );
    if (!c.dry_run) {
      for (const { t } of cleared) t.state = t.state === "running" ? "restarting" : null;
      if (c.reset_dag_runs) {
        for (const run of new Set(cleared.map(({ run }) => run))) {
          if (run.state === "success" || run.state === "failed") Object.assign(run, { state: "queued", queued_at: new Date().toISOString() });
        }
      }
    }
    return send(res, 200, version === "v1" ? { task_instances: answer } : { task_instances: answer, total_entries: answer.length });
  }

  function patchDag(res: http.ServerResponse, dagId: string, url: URL, body: Record<string, unknown>) {
    const mask = url.searchParams.getAll("update_mask");
    if (mask.length && mask.some((m) => m !== "is_paused")) return fail(res, 400, "Only `is_paused` field can be updated through the REST API");
    const checked = validateBody(version, BODIES[version].patchDag, body);
    if (!checked.ok) return refuse(res, checked.refusal);
    if (typeof checked.value.is_paused === "boolean") paused.set(dagId, checked.value.is_paused);
    return send(res, 200, dagView(dagId));
  }

  function listTasks(res: http.ServerResponse, dagId: string, runId: string, url: URL) {
    const run = runs.get(key(dagId, runId));
    // Airflow 2 filters task instances without checking the run exists; Airflow 3 answers 404.
    if (!run && version === "v2") return fail(res, 404, `The DagRun with dag_id: \`${dagId}\` and run_id: \`${runId}\` was not found`);
    const states = url.searchParams.getAll("state");
    const maxLimit = 100; // [api] maximum_page_limit's default in both versions
    const limit = Math.min(Number(url.searchParams.get("limit") ?? (version === "v1" ? 100 : 50)), maxLimit);
    const offset = Number(url.searchParams.get("offset") ?? 0);
    if (!Number.isInteger(limit) || limit < 0 || !Number.isInteger(offset) || offset < 0)
      return fail(res, version === "v1" ? 400 : 422, "limit and offset must be non-negative integers");
    const all = (run?.tasks ?? []).filter((t) => !states.length || states.includes(t.state ?? "none"));
    return send(res, 200, { task_instances: all.slice(offset, offset + limit).map((t) => taskView(run!, t)), total_entries: all.length });
  }

  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://fake");
      const method = req.method ?? "";
      const call: FakeAirflow["requests"][number] = {
        method,
        path: url.pathname,
        query: url.search,
        contentType: req.headers["content-type"],
        body: raw ? raw : undefined,
      };
      requests.push(call);
      res.on("finish", () => (call.status = res.statusCode));
      let body: Record<string, unknown> = {};
      if (method === "POST" || method === "PATCH") {
        const read = readJson(version, req.headers["content-type"], raw);
        try {
          call.body = JSON.parse(raw);
        } catch {
          /* kept as text */
        }
        if (!read.ok) return refuse(res, read.refusal);
        body = read.body;
      }

      if (version === "v2" && method === "POST" && url.pathname === "/auth/token") {
        const checked = validateBody(version, BODIES.v2.token, body);
        if (!checked.ok) return refuse(res, checked.refusal);
        const user = options.users[String(body.username)];
        if (!user || user.password !== body.password) return fail(res, 401, "Invalid credentials");
        const exp = Math.floor(Date.now() / 1000) + (options.tokenLifetimeSeconds ?? 86_400);
        return send(res, 201, { access_token: sign({ sub: String(body.username), exp, iat: Math.floor(Date.now() / 1000) }) });
      }
      const prefix = `/api/${version}`;
      if (!url.pathname.startsWith(prefix)) return fail(res, 404, "Not Found");
      const user = userOf(req);
      if (!user) return fail(res, 401, version === "v1" ? "Unauthorized" : req.headers.authorization ? "Invalid JWT token" : "Not authenticated");
      call.user = user;
      const m = /^\/dags\/([^/]+)(?:\/(dagRuns|clearTaskInstances)(?:\/([^/]+)(?:\/(taskInstances))?)?)?$/.exec(url.pathname.slice(prefix.length));
      if (!m) return fail(res, 404, "Not Found");
      const dagId = decodeURIComponent(m[1]!);
      const dag = options.dags[dagId];
      if (!dag) return fail(res, 404, version === "v1" ? `DAG with dag_id: '${dagId}' not found` : `Dag with id ${dagId} was not found`);
      const permissions = options.users[user]!;
      const forbidden = () => fail(res, 403, "Forbidden");

      if (!m[2]) {
        if (method === "GET") return send(res, 200, dagView(dagId));
        if (method === "PATCH") return permissions.canEditDag ? patchDag(res, dagId, url, body) : forbidden();
      } else if (m[2] === "dagRuns" && !m[3]) {
        if (method === "POST") return permissions.canWrite ? trigger(res, dagId, dag, body) : forbidden();
      } else if (m[2] === "dagRuns" && m[3] && !m[4]) {
        if (method === "GET") {
          const run = runs.get(key(dagId, decodeURIComponent(m[3])));
          if (!run)
            return fail(
              res,
              404,
              version === "v1"
                ? `DAGRun with DAG ID: '${dagId}' and DagRun ID: '${decodeURIComponent(m[3])}' not found`
                : `The DagRun with dag_id: \`${dagId}\` and run_id: \`${decodeURIComponent(m[3])}\` was not found`,
            );
          return send(res, 200, runView(run));
        }
      } else if (m[2] === "dagRuns" && m[3] && m[4]) {
        if (method === "GET") return listTasks(res, dagId, decodeURIComponent(m[3]), url);
      } else if (m[2] === "clearTaskInstances" && !m[3]) {
        if (method === "POST") return permissions.canWrite ? clear(res, dagId, dag, body) : forbidden();
      }
      return fail(res, 405, "Method Not Allowed");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    runs,
    paused,
    failTasks(dagId, runId, taskIds) {
      const dag = options.dags[dagId]!;
      const run = runs.get(key(dagId, runId))!;
      const blocked = descendants(dag, taskIds);
      for (const t of run.tasks) t.state = taskIds.includes(t.task_id) ? "failed" : blocked.has(t.task_id) ? "upstream_failed" : "success";
      run.state = "failed";
    },
    schedule() {
      for (const run of runs.values()) if (run.state === "queued" && !paused.get(run.dag_id)) run.state = "running";
    },
    rotateTokenSecret() {
      secret = randomBytes(32);
    },
    holdTriggerAnswers(ms) {
      triggerHoldMs = ms;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
