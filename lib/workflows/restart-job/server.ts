import { airflowFor, permanentOnClientError, readyToRun, runOutcome } from "../../integrations/airflow/connection";
import { clearTaskInstancesCall, getDagCall, getDagRunCall, RESTARTED_STATES, restartableTasksCall, unpauseDagCall } from "../../integrations/airflow/requests";
import type { TargetDefinition } from "../../policy/schema";
import { ExecutionFailure, type OutsidePreview, type QueuedWorkflow } from "../types";
import { restartJobDefinition, type RestartJobInput } from "./definition";

/** Stands for the task ids read from Airflow just before clearing, in the approver's preview. */
export const TASKS_READ_AT_RUN_TIME = `<tasks of the run in state ${RESTARTED_STATES.join(" or ")}, read just before clearing>`;

const clearArgs = (dagId: string, input: RestartJobInput, taskIds: string[]) => ({
  dagId,
  runId: input.runId,
  taskIds,
  includeUpstream: input.scope.includes("upstream"),
  includeDownstream: input.scope.includes("downstream"),
  dryRun: input.dryRun,
});

/** What a Restart a job request sends to Airflow, built by the functions the client sends. */
export function restartJobPreview({ input, target }: { input: RestartJobInput; target: TargetDefinition | undefined }): OutsidePreview {
  const config = target?.airflow;
  if (!config) return { system: "Airflow", calls: [], notes: ["This target has no Airflow configured: the request would fail without clearing anything."] };
  const unpause =
    config.unpause && !input.dryRun ? [{ ...unpauseDagCall(config.dagId), when: "only if the DAG is paused (the policy allows Latchkey to unpause it)" }] : [];
  return {
    system: `Airflow (/api/${config.version})`,
    calls: [
      ...(input.dryRun
        ? []
        : [{ ...getDagCall(config.dagId), when: config.unpause ? "to see whether the DAG is paused" : "to refuse if the DAG is paused" }, ...unpause]),
      { ...getDagRunCall(config.dagId, input.runId), when: "to refuse a run Airflow does not know" },
      restartableTasksCall(config.dagId, input.runId),
      clearTaskInstancesCall(clearArgs(config.dagId, input, [TASKS_READ_AT_RUN_TIME])),
    ],
    notes: [
      input.dryRun ? "A dry run: Airflow lists what it would clear and changes nothing." : "Latchkey then follows the run until it ends.",
      "The task ids sent and the tasks Airflow cleared are recorded in the request's audit trail.",
    ],
  };
}

/**
 * Restart a failed job run: clears the failed tasks of the chosen Airflow run, named in
 * `task_ids` so that the upstream or downstream scope chosen takes effect, and follows the
 * run until it ends. A target without Airflow in the policy fails cleanly, audited, never
 * a fake success.
 */
export const restartJob = {
  ...restartJobDefinition,
  kind: "queued",
  async revoke() {
    // Nothing was granted, so nothing to undo.
  },
  preview(ctx) {
    return restartJobPreview(ctx);
  },
  async perform({ target, input }) {
    const { client, dagId, config } = airflowFor(target, "Restart a job");
    const unpaused = input.dryRun ? false : await readyToRun(client, dagId, config, target);
    // Airflow 2 lists no tasks for a run it does not know rather than answering 404: ask for the run first.
    await permanentOnClientError(() => client.getDagRun(dagId, input.runId));
    const failed = await permanentOnClientError(() => client.restartableTaskIds(dagId, input.runId));
    if (failed.length === 0) throw new ExecutionFailure(`Run ${input.runId} of DAG ${dagId} has no failed tasks: nothing was cleared.`);
    const clear = clearArgs(dagId, input, failed);
    const { taskIds } = await permanentOnClientError(() => client.clearTasks(clear));
    return {
      audit: {
        dagId,
        runId: input.runId,
        sent: JSON.stringify(clearTaskInstancesCall(clear).body),
        cleared: taskIds.join(", ") || "none",
        dryRun: String(input.dryRun),
        ...(unpaused ? { unpaused: "true" } : {}),
      },
      externalRef: `${dagId}/${input.runId}`,
      externalState: input.dryRun ? "dry run" : "queued",
    };
  },
  async follow({ request, target, now, stateSince }) {
    if (request.externalState === "dry run") return { state: "dry run", done: true };
    const { client, dagId, config } = airflowFor(target, "Restart a job");
    return runOutcome(client, { dagId, runId: request.externalRef!.slice(dagId.length + 1) }, config, { now, stateSince });
  },
} satisfies QueuedWorkflow<RestartJobInput, "restart-job">;
