import { airflowError, AirflowError } from "./errors";
import {
  clearTaskInstancesCall,
  getDagCall,
  getDagRunCall,
  restartableTasksCall,
  triggerDagRunCall,
  unpauseDagCall,
  type AirflowApiVersion,
  type AirflowCall,
} from "./requests";

/**
 * A client for Apache Airflow's stable REST API: Airflow 2 (`/api/v1`, basic auth) and
 * Airflow 3 (`/api/v2`, a bearer token from `POST /auth/token`). It sends exactly the calls
 * `./requests.ts` builds. A token is kept until its own expiry, and a 401 with a cached
 * token signs in again once before giving up, because tokens can end early (a rotated
 * secret, another API server).
 */
export { AirflowError };
export type { AirflowApiVersion };

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
  getDag(dagId: string): Promise<{ dagId: string; isPaused: boolean }>;
  unpauseDag(dagId: string): Promise<void>;
  triggerDagRun(input: { dagId: string; runId: string; conf: Record<string, unknown>; note: string }): Promise<DagRun & { created: boolean }>;
  getDagRun(dagId: string, runId: string): Promise<DagRun>;
  /** The distinct task ids of a run in a state a restart clears (failed, upstream_failed). */
  restartableTaskIds(dagId: string, runId: string): Promise<string[]>;
  clearTasks(input: Parameters<typeof clearTaskInstancesCall>[0]): Promise<{ taskIds: string[] }>;
}

/** Without a readable `exp` in the token, it is kept this long. */
const DEFAULT_TOKEN_MS = 5 * 60_000;

function tokenExpiry(token: string): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { exp?: unknown };
    // A margin, so a token is not sent in its last seconds.
    if (typeof payload.exp === "number") return payload.exp * 1000 - 30_000;
  } catch {
    /* not a JWT Latchkey can read: fall back to the default */
  }
  return Date.now() + DEFAULT_TOKEN_MS;
}

export function airflowClient(connection: AirflowConnection, fetchImpl: typeof fetch = fetch): AirflowClient {
  const base = connection.baseUrl.replace(/\/$/, "");
  const api = `${base}/api/${connection.version}`;
  let token: { value: string; until: number } | undefined;

  async function signIn(): Promise<string> {
    const res = await fetchImpl(`${base}/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ username: connection.username, password: connection.password }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) throw airflowError(res.status, text, "sign in");
    const value = (JSON.parse(text) as { access_token?: unknown }).access_token;
    if (typeof value !== "string" || !value) throw new AirflowError("Airflow's /auth/token answered without an access_token.", res.status, true);
    token = { value, until: tokenExpiry(value) };
    return value;
  }

  async function authorization(): Promise<string> {
    if (connection.version === "v1") return `Basic ${Buffer.from(`${connection.username}:${connection.password}`).toString("base64")}`;
    return `Bearer ${token && token.until > Date.now() ? token.value : await signIn()}`;
  }

  async function send<T>(call: AirflowCall, what: string): Promise<T> {
    const attempt = async () =>
      fetchImpl(`${api}${call.path}`, {
        method: call.method,
        headers: { authorization: await authorization(), accept: "application/json", ...(call.body ? { "content-type": "application/json" } : {}) },
        body: call.body ? JSON.stringify(call.body) : undefined,
        signal: AbortSignal.timeout(15_000),
      });
    let res = await attempt();
    if (res.status === 401 && connection.version === "v2") {
      // The token ended before its time: sign in again, once.
      await res.body?.cancel();
      token = undefined;
      res = await attempt();
      // A fresh token refused may be another API server not yet knowing the secret: worth a later retry.
      if (res.status === 401) throw airflowError(401, await res.text(), what, true);
    }
    const text = await res.text();
    if (!res.ok) throw airflowError(res.status, text, what);
    return (text ? JSON.parse(text) : {}) as T;
  }

  const runOf = (dagId: string, body: { dag_run_id: string; state: DagRunState }): DagRun => ({ dagId, runId: body.dag_run_id, state: body.state });

  return {
    async getDag(dagId) {
      const dag = await send<{ dag_id: string; is_paused: boolean | null }>(getDagCall(dagId), `read DAG ${dagId}`);
      return { dagId: dag.dag_id, isPaused: dag.is_paused === true };
    },
    async unpauseDag(dagId) {
      await send(unpauseDagCall(dagId), `unpause DAG ${dagId}`);
    },
    async triggerDagRun(input) {
      try {
        return { ...runOf(input.dagId, await send(triggerDagRunCall(connection.version, input), `start DAG ${input.dagId}`)), created: true };
      } catch (error) {
        // The run id is derived from the request: a retry finds the run it already started.
        if (error instanceof AirflowError && error.status === 409) return { ...(await this.getDagRun(input.dagId, input.runId)), created: false };
        throw error;
      }
    },
    async getDagRun(dagId, runId) {
      return runOf(dagId, await send(getDagRunCall(dagId, runId), `read run ${runId} of DAG ${dagId}`));
    },
    async restartableTaskIds(dagId, runId) {
      const ids = new Set<string>();
      for (let offset = 0; ;) {
        const page = await send<{ task_instances: { task_id: string }[]; total_entries: number }>(
          restartableTasksCall(dagId, runId, offset),
          `list the failed tasks of run ${runId} of DAG ${dagId}`,
        );
        for (const t of page.task_instances) ids.add(t.task_id);
        offset += page.task_instances.length;
        if (page.task_instances.length === 0 || offset >= page.total_entries) return [...ids];
      }
    },
    async clearTasks(input) {
      const result = await send<{ task_instances: { task_id: string }[] }>(clearTaskInstancesCall(input), `restart tasks of ${input.dagId}`);
      return { taskIds: [...new Set(result.task_instances.map((t) => t.task_id))] };
    },
  };
}
