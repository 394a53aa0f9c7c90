import { ExecutionFailure } from "../types";
import type { WorkflowModule } from "../types";
import { restartJobSchema, type RestartJobInput } from "./schema";

/**
 * Restart a failed job run. Its executor (the Airflow client) arrives with the
 * integrations; until then execution fails cleanly, recorded and audited, never a fake success.
 */
export const restartJob: WorkflowModule<RestartJobInput> = {
  id: "restart-job",
  title: "Restart a job",
  description: "Clear and re-run a failed run of a scheduled job, with approval.",
  category: "Jobs",
  risk: "medium",
  lasting: false,
  inputSchema: restartJobSchema,
  async execute({ request }) {
    throw new ExecutionFailure(`No executor is configured for "Restart a job" on ${request.targetId}: nothing was restarted.`);
  },
  async revoke() {
    // Nothing was granted, so nothing to undo.
  },
};
