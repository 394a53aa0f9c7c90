/**
 * The exact Airflow API calls Latchkey makes, built purely from their inputs. The client
 * sends what these return and the request page shows the same thing to the approver, so
 * what is approved and what Airflow receives cannot drift apart. Paths are relative to
 * the API root (`/api/v1` or `/api/v2`).
 */
export type AirflowApiVersion = "v1" | "v2";

export interface AirflowCall {
  method: "GET" | "POST" | "PATCH";
  path: string;
  body?: Record<string, unknown>;
}

/** Task states Latchkey restarts: a failed task and the tasks that could not run because of it. */
export const RESTARTED_STATES = ["failed", "upstream_failed"] as const;

/** Airflow keeps at most this many characters of a run's note. */
const NOTE_LIMIT = 1000;

const dagPath = (dagId: string) => `/dags/${encodeURIComponent(dagId)}`;

export function getDagCall(dagId: string): AirflowCall {
  return { method: "GET", path: dagPath(dagId) };
}

/** Unpausing is the only DAG change the API allows; `update_mask` says so explicitly. */
export function unpauseDagCall(dagId: string): AirflowCall {
  return { method: "PATCH", path: `${dagPath(dagId)}?update_mask=is_paused`, body: { is_paused: false } };
}

/**
 * Starts a run. Airflow 3 requires `logical_date` (null: a run not tied to a data
 * interval) and refuses unknown fields; Airflow 2 refuses unknown and read-only fields and
 * gives the run the current time as its logical date when none is sent.
 */
export function triggerDagRunCall(version: AirflowApiVersion, run: { dagId: string; runId: string; conf: Record<string, unknown>; note: string }): AirflowCall {
  const note = run.note.length > NOTE_LIMIT ? `${run.note.slice(0, NOTE_LIMIT - 1)}…` : run.note;
  const body = version === "v2" ? { dag_run_id: run.runId, logical_date: null, conf: run.conf, note } : { dag_run_id: run.runId, conf: run.conf, note };
  return { method: "POST", path: `${dagPath(run.dagId)}/dagRuns`, body };
}

export function getDagRunCall(dagId: string, runId: string): AirflowCall {
  return { method: "GET", path: `${dagPath(dagId)}/dagRuns/${encodeURIComponent(runId)}` };
}

/** One page of a run's task instances in the states a restart clears. */
export function restartableTasksCall(dagId: string, runId: string, offset = 0, limit = 100): AirflowCall {
  const query = new URLSearchParams([...RESTARTED_STATES.map((s) => ["state", s]), ["limit", String(limit)], ["offset", String(offset)]]);
  return { method: "GET", path: `${getDagRunCall(dagId, runId).path}/taskInstances?${query}` };
}

/**
 * Clears the given tasks of one run. Airflow applies `include_upstream` and
 * `include_downstream` only together with `task_ids`, so the tasks are always named; with
 * them named, `only_failed` is off so that the upstream or downstream tasks chosen are
 * cleared whatever their state (they usually succeeded or never ran). `dry_run` defaults
 * to true and `reset_dag_runs` to false in Airflow 2, so both are always said.
 */
export function clearTaskInstancesCall(clear: {
  dagId: string;
  runId: string;
  taskIds: string[];
  includeUpstream: boolean;
  includeDownstream: boolean;
  dryRun: boolean;
}): AirflowCall {
  return {
    method: "POST",
    path: `${dagPath(clear.dagId)}/clearTaskInstances`,
    body: {
      dry_run: clear.dryRun,
      dag_run_id: clear.runId,
      task_ids: clear.taskIds,
      include_upstream: clear.includeUpstream,
      include_downstream: clear.includeDownstream,
      only_failed: false,
      reset_dag_runs: true,
    },
  };
}
