import type { WorkflowModule } from "../../workflows/types";
import { airflowFor, permanentOnClientError, runOutcome } from "./connection";
import { triggerDagSchema, type TriggerDagInput } from "./schema";

/** The run id for a request: a retried execution finds the run it started instead of starting another. */
export const runIdFor = (requestId: string) => `latchkey__${requestId}`;

/** Trigger a DAG run, with approval; the request follows the run until it ends. */
export const triggerDag: WorkflowModule<TriggerDagInput> = {
  id: "trigger-dag",
  title: "Trigger a DAG run",
  description: "Start a run of a scheduled job with a configuration, with approval; the request follows the run.",
  category: "Jobs",
  risk: "medium",
  lasting: false,
  inputSchema: triggerDagSchema,
  async execute() {
    throw new Error("trigger-dag runs on the queue (perform), never inline");
  },
  async revoke() {
    // A run is not taken back; it simply ends.
  },
  async perform({ request, requester, target, input }) {
    const { client, dagId } = airflowFor(target, "Trigger a DAG run");
    const runId = runIdFor(request.id);
    const run = await permanentOnClientError(() =>
      client.triggerDagRun({ dagId, runId, conf: JSON.parse(input.conf || "{}") as Record<string, unknown>, note: `Latchkey request ${request.id} by ${requester.email}` }),
    );
    return { audit: { dagId, runId, created: String(run.created) }, externalRef: `${dagId}/${runId}`, externalState: run.state };
  },
  async follow({ request, target }) {
    const { client, dagId } = airflowFor(target, "Trigger a DAG run");
    const runId = runIdFor(request.id);
    return runOutcome((await permanentOnClientError(() => client.getDagRun(dagId, runId))).state, runId);
  },
};
