import { airflowFor, permanentOnClientError, readyToRun, runOutcome } from "../../integrations/airflow/connection";
import { getDagCall, triggerDagRunCall, unpauseDagCall } from "../../integrations/airflow/requests";
import type { TargetDefinition } from "../../policy/schema";
import type { OutsidePreview, QueuedWorkflow } from "../types";
import { triggerDagDefinition, type TriggerDagInput } from "./definition";

/** The run id for a request: a retried execution finds the run it started instead of starting another. */
export const runIdFor = (requestId: string) => `latchkey__${requestId}`;

/** The run's note: who asked and why, so Airflow's own UI tells the story too. */
const noteFor = (requestId: string, email: string, input: TriggerDagInput) => `Latchkey request ${requestId} by ${email}: ${input.justification}`;

const confOf = (input: TriggerDagInput) => JSON.parse(input.conf || "{}") as Record<string, unknown>;

/** What a Trigger a DAG run request sends to Airflow, built by the functions the client sends. */
export function triggerDagPreview({
  requestId,
  requesterEmail,
  input,
  target,
}: {
  requestId: string;
  requesterEmail: string;
  input: TriggerDagInput;
  target: TargetDefinition | undefined;
}): OutsidePreview {
  const config = target?.airflow;
  if (!config) return { system: "Airflow", calls: [], notes: ["This target has no Airflow configured: the request would fail without starting anything."] };
  const unpause = config.unpause ? [{ ...unpauseDagCall(config.dagId), when: "only if the DAG is paused (the policy allows Latchkey to unpause it)" }] : [];
  return {
    system: `Airflow (/api/${config.version})`,
    calls: [
      { ...getDagCall(config.dagId), when: config.unpause ? "to see whether the DAG is paused" : "to refuse if the DAG is paused" },
      ...unpause,
      triggerDagRunCall(config.version, {
        dagId: config.dagId,
        runId: runIdFor(requestId),
        conf: confOf(input),
        note: noteFor(requestId, requesterEmail, input),
      }),
    ],
    notes: ["Latchkey then follows the run until it ends."],
  };
}

/** Trigger a DAG run, with approval; the request follows the run until it ends. */
export const triggerDag = {
  ...triggerDagDefinition,
  kind: "queued",
  async revoke() {
    // A run is not taken back; it simply ends.
  },
  preview(ctx) {
    return triggerDagPreview(ctx);
  },
  async perform({ request, requester, target, input }) {
    const { client, dagId, config } = airflowFor(target, "Trigger a DAG run");
    const runId = runIdFor(request.id);
    const unpaused = await readyToRun(client, dagId, config, target);
    const run = await permanentOnClientError(() =>
      client.triggerDagRun({ dagId, runId, conf: confOf(input), note: noteFor(request.id, requester.email, input) }),
    );
    return {
      audit: { dagId, runId, created: String(run.created), ...(unpaused ? { unpaused: "true" } : {}) },
      externalRef: `${dagId}/${runId}`,
      externalState: run.state,
    };
  },
  async follow({ request, target, now, stateSince }) {
    const { client, dagId, config } = airflowFor(target, "Trigger a DAG run");
    return runOutcome(client, { dagId, runId: runIdFor(request.id) }, config, { now, stateSince });
  },
} satisfies QueuedWorkflow<TriggerDagInput, "trigger-dag">;
