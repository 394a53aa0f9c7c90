import type { TargetDefinition } from "../../policy/schema";
import { ExecutionFailure } from "../../workflows/types";
import { AirflowError, airflowClient, type AirflowClient, type DagRunState } from "./client";

/** The Airflow a target names in the policy, reached with credentials from the environment. */
export function airflowFor(target: TargetDefinition, what: string): { client: AirflowClient; dagId: string } {
  const config = target.airflow;
  if (!config) throw new ExecutionFailure(`No executor is configured for "${what}" on ${target.title}: nothing was started.`);
  const [baseUrl, username, password] = [process.env[config.urlEnv], process.env[config.userEnv], process.env[config.passwordEnv]];
  if (!baseUrl || !username || !password) throw new ExecutionFailure(`${config.urlEnv}, ${config.userEnv} and ${config.passwordEnv} must be set to reach Airflow for ${target.title}.`);
  return { client: airflowClient({ baseUrl, username, password, version: config.version }), dagId: config.dagId };
}

/** Client errors (bad request, unknown DAG, no permission) will not heal by retrying. */
export async function permanentOnClientError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AirflowError && error.status >= 400 && error.status < 500 && error.status !== 429) throw new ExecutionFailure(error.message);
    throw error;
  }
}

/** A run's state as the request page shows it, and whether it has ended. */
export function runOutcome(state: DagRunState, runId: string): { state: string; done: boolean; failure?: string } {
  if (state === "success") return { state, done: true };
  if (state === "failed") return { state, done: true, failure: `Airflow run ${runId} ended failed.` };
  return { state, done: false };
}
