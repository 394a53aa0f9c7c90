import { formatDuration } from "../../policy/duration";
import type { TargetDefinition } from "../../policy/schema";
import { ExecutionFailure } from "../../workflows/types";
import { AirflowError, airflowClient, type AirflowClient, type DagRunState } from "./client";

/** How long a run may stay queued when the target does not say (`airflow.queuedTimeout`). */
export const DEFAULT_QUEUED_TIMEOUT_SECONDS = 3600;

export type AirflowTargetConfig = NonNullable<TargetDefinition["airflow"]>;

/** The Airflow a target names in the policy, reached with credentials from the environment. */
export function airflowFor(target: TargetDefinition, what: string): { client: AirflowClient; dagId: string; config: AirflowTargetConfig } {
  const config = target.airflow;
  if (!config) throw new ExecutionFailure(`No executor is configured for "${what}" on ${target.title}: nothing was started.`);
  const [baseUrl, username, password] = [process.env[config.urlEnv], process.env[config.userEnv], process.env[config.passwordEnv]];
  if (!baseUrl || !username || !password)
    throw new ExecutionFailure(`${config.urlEnv}, ${config.userEnv} and ${config.passwordEnv} must be set to reach Airflow for ${target.title}.`);
  return { client: airflowClient({ baseUrl, username, password, version: config.version }), dagId: config.dagId, config };
}

/** Errors that will not heal by retrying (bad request, unknown DAG, no permission, bad password) fail the request at once. */
export async function permanentOnClientError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AirflowError && !error.retryable && error.status >= 400 && error.status < 500) throw new ExecutionFailure(error.message);
    throw error;
  }
}

/**
 * A run on a paused DAG stays queued until someone unpauses it, so Latchkey does not start
 * one there: it unpauses the DAG when the target's policy allows it (`airflow.unpause`),
 * and otherwise refuses, naming the DAG and how to unpause it. Returns whether it unpaused.
 */
export async function readyToRun(client: AirflowClient, dagId: string, config: AirflowTargetConfig, target: TargetDefinition): Promise<boolean> {
  const dag = await permanentOnClientError(() => client.getDag(dagId));
  if (!dag.isPaused) return false;
  if (!config.unpause) {
    throw new ExecutionFailure(
      `DAG ${dagId} is paused in Airflow, so a run would stay queued: nothing was started. Unpause it (the toggle on the DAG's page, or \`airflow dags unpause ${dagId}\`) and ask again, or set \`airflow.unpause: true\` on ${target.title} in the policy to let Latchkey unpause it.`,
    );
  }
  await permanentOnClientError(() => client.unpauseDag(dagId));
  return true;
}

/**
 * A run's state as the request page shows it, and whether it has ended. A run still queued
 * `queuedTimeout` after Latchkey saw it queued fails the request with that reason, naming a
 * paused DAG when that is why.
 */
export async function runOutcome(
  client: AirflowClient,
  run: { dagId: string; runId: string },
  config: AirflowTargetConfig,
  clock: { now: Date; stateSince: Date },
): Promise<{ state: string; done: boolean; failure?: string }> {
  const state: DagRunState = (await permanentOnClientError(() => client.getDagRun(run.dagId, run.runId))).state;
  if (state === "success") return { state, done: true };
  if (state === "failed") return { state, done: true, failure: `Airflow run ${run.runId} ended failed.` };
  const limit = config.queuedTimeout ?? DEFAULT_QUEUED_TIMEOUT_SECONDS;
  if (state === "queued" && clock.now.getTime() - clock.stateSince.getTime() > limit * 1000) {
    const paused = await client.getDag(run.dagId).then(
      (dag) => dag.isPaused,
      () => false,
    );
    const why = paused
      ? ` DAG ${run.dagId} is paused: unpause it in Airflow to let runs start.`
      : " Is the scheduler running, and does the pool or the DAG's max_active_runs leave room?";
    return { state, done: true, failure: `Airflow run ${run.runId} stayed queued for more than ${formatDuration(limit)} (the target's queuedTimeout).${why}` };
  }
  return { state, done: false };
}
