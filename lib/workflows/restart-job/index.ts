import { airflowFor, permanentOnClientError, runOutcome } from "../../integrations/airflow/connection";
import type { WorkflowModule } from "../types";
import { restartJobSchema, type RestartJobInput } from "./schema";

/**
 * Restart a failed job run: clears the failed tasks of the chosen Airflow run
 * (`clearTaskInstances` with `dry_run` said explicitly) and follows the run until it ends.
 * A target without Airflow in the policy fails cleanly, audited, never a fake success.
 */
export const restartJob: WorkflowModule<RestartJobInput> = {
  id: "restart-job",
  title: "Restart a job",
  description: "Clear and re-run the failed tasks of a scheduled job's run, with approval; the request follows the run.",
  category: "Jobs",
  risk: "medium",
  lasting: false,
  inputSchema: restartJobSchema,
  async execute() {
    throw new Error("restart-job runs on the queue (perform), never inline");
  },
  async revoke() {
    // Nothing was granted, so nothing to undo.
  },
  async perform({ target, input }) {
    const { client, dagId } = airflowFor(target, "Restart a job");
    const { taskIds } = await permanentOnClientError(() =>
      client.clearFailedTasks({ dagId, runId: input.runId, includeDownstream: input.scope.includes("downstream"), includeUpstream: input.scope.includes("upstream"), dryRun: input.dryRun }),
    );
    return {
      audit: { dagId, runId: input.runId, cleared: taskIds.join(", ") || "none", dryRun: String(input.dryRun) },
      externalRef: `${dagId}/${input.runId}`,
      externalState: input.dryRun ? "dry run" : "queued",
    };
  },
  async follow({ request, target }) {
    if (request.externalState === "dry run") return { state: "dry run", done: true };
    const { client, dagId } = airflowFor(target, "Restart a job");
    const runId = request.externalRef!.slice(dagId.length + 1);
    return runOutcome((await permanentOnClientError(() => client.getDagRun(dagId, runId))).state, runId);
  },
};
