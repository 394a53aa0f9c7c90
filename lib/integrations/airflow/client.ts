/**
 * A client for Apache Airflow's stable REST API: Airflow 2 (`/api/v1`, basic auth) and
 * Airflow 3 (`/api/v2`, a bearer token from `POST /auth/token`). Errors become messages a
 * person can act on.
 */
export type AirflowApiVersion = "v1" | "v2";

export interface AirflowConnection {
  baseUrl: string;
  version: AirflowApiVersion;
  username: string;
  password: string;
}

export type DagRunState = "queued" | "running" | "success" | "failed";

export interface DagRun {
  dagId: string;
  runId: string;
  state: DagRunState;
}

export interface AirflowClient {
  triggerDagRun(input: { dagId: string; runId: string; conf: Record<string, unknown>; note: string }): Promise<DagRun & { created: boolean }>;
  getDagRun(dagId: string, runId: string): Promise<DagRun>;
  clearFailedTasks(input: { dagId: string; runId: string; includeDownstream?: boolean; includeUpstream?: boolean; dryRun?: boolean }): Promise<{ taskIds: string[] }>;
}

export class AirflowError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "AirflowError";
  }
}

function explain(status: number, detail: string, what: string): string {
  switch (status) {
    case 401:
      return `Airflow refused Latchkey's credentials (401) while trying to ${what}. Check the Airflow user or password.`;
    case 403:
      return `Latchkey's Airflow user may not ${what} (403). Give it the needed permission in Airflow.`;
    case 404:
      return `Airflow does not know it (404) while trying to ${what}: ${detail}`;
    case 409:
      return `Airflow already has it (409) while trying to ${what}: ${detail}`;
    case 422:
    case 400:
      return `Airflow refused the request to ${what} as invalid (${status}): ${detail}`;
    default:
      return `Airflow answered ${status} while trying to ${what}: ${detail}`;
  }
}

export function airflowClient(connection: AirflowConnection, fetchImpl: typeof fetch = fetch): AirflowClient {
  const base = connection.baseUrl.replace(/\/$/, "");
  const api = `${base}/api/${connection.version}`;
  let token: { value: string; until: number } | undefined;

  async function authorization(): Promise<string> {
    if (connection.version === "v1") return `Basic ${Buffer.from(`${connection.username}:${connection.password}`).toString("base64")}`;
    if (!token || token.until < Date.now()) {
      const res = await fetchImpl(`${base}/auth/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: connection.username, password: connection.password }),
      });
      if (!res.ok) throw new AirflowError(explain(res.status, await res.text(), "sign in"), res.status);
      const body = (await res.json()) as { access_token: string };
      token = { value: body.access_token, until: Date.now() + 5 * 60_000 };
    }
    return `Bearer ${token.value}`;
  }

  async function call<T>(method: string, path: string, what: string, body?: unknown): Promise<T> {
    const res = await fetchImpl(`${api}${path}`, {
      method,
      headers: { authorization: await authorization(), "content-type": "application/json", accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) {
      let detail = text;
      try {
        const parsed = JSON.parse(text) as { detail?: unknown; title?: string };
        detail = typeof parsed.detail === "string" ? parsed.detail : JSON.stringify(parsed.detail ?? parsed.title ?? parsed);
      } catch {
        /* plain text */
      }
      throw new AirflowError(explain(res.status, detail, what), res.status);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }

  const runOf = (dagId: string, body: { dag_run_id: string; state: DagRunState }): DagRun => ({ dagId, runId: body.dag_run_id, state: body.state });
  const dagPath = (dagId: string) => `/dags/${encodeURIComponent(dagId)}`;

  return {
    async triggerDagRun({ dagId, runId, conf, note }) {
      // v2 requires logical_date (null allowed) and refuses unknown fields; v1 has no such rule.
      const body = connection.version === "v2" ? { dag_run_id: runId, logical_date: null, conf, note } : { dag_run_id: runId, conf, note };
      try {
        return { ...runOf(dagId, await call(`POST`, `${dagPath(dagId)}/dagRuns`, `start DAG ${dagId}`, body)), created: true };
      } catch (error) {
        // The run id is derived from the request: a retry finds the run it already started.
        if (error instanceof AirflowError && error.status === 409) return { ...(await this.getDagRun(dagId, runId)), created: false };
        throw error;
      }
    },
    async getDagRun(dagId, runId) {
      return runOf(dagId, await call("GET", `${dagPath(dagId)}/dagRuns/${encodeURIComponent(runId)}`, `read run ${runId} of DAG ${dagId}`));
    },
    async clearFailedTasks({ dagId, runId, includeDownstream = false, includeUpstream = false, dryRun = false }) {
      const body = {
        dry_run: dryRun, // Airflow defaults to a dry run: always say which one is meant.
        dag_run_id: runId,
        only_failed: true,
        reset_dag_runs: true,
        include_downstream: includeDownstream,
        include_upstream: includeUpstream,
      };
      const result = await call<{ task_instances: { task_id: string }[] }>("POST", `${dagPath(dagId)}/clearTaskInstances`, `restart failed tasks of ${dagId}`, body);
      return { taskIds: result.task_instances.map((t) => t.task_id) };
    },
  };
}
