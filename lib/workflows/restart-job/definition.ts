import { z } from "zod";
import { airflowUnavailable } from "../../integrations/airflow/availability";
import { justificationField, targetField } from "../common-fields";
import type { WorkflowDefinition } from "../types";

/** The "Restart a job" form. Shared by the browser and the server. */
export const restartJobSchema = z
  .object({
    targetId: targetField.meta({ label: "Job", help: "The scheduled job (DAG) to restart.", optionsFrom: "policy:targets" }),
    runId: z
      .string({ message: "Give the run to restart." })
      .trim()
      .min(1, { message: "Give the run to restart." })
      .max(250)
      .regex(/^[\w.:+-]+$/, { message: "A run id has letters, digits and . _ : + - only." })
      .meta({ label: "Run id", help: "The failed run, as the scheduler shows it.", placeholder: "scheduled__2026-11-25T00:00:00+00:00" }),
    scope: z
      .array(z.enum(["failed-tasks", "downstream", "upstream"]), { message: "Choose what to clear." })
      .min(1, { message: "Choose at least one thing to clear." })
      // Airflow clears upstream or downstream tasks only around named tasks: here, the failed ones.
      .refine((scope) => scope.length === 0 || scope.includes("failed-tasks"), {
        message: "Upstream and downstream tasks are cleared around the failed tasks: keep failed-tasks chosen.",
      })
      .meta({
        label: "Clear",
        help: "The run's failed tasks (and those that could not run because of them), plus, if chosen, every task upstream or downstream of them, whatever its state.",
      }),
    dryRun: z.boolean().default(false).meta({ label: "Dry run", help: "Show what would be cleared without clearing it." }),
    justification: justificationField,
  })
  .strict();

export type RestartJobInput = z.infer<typeof restartJobSchema>;

/** Restart a job, as the catalog and the form show it; client-safe. */
export const restartJobDefinition = {
  id: "restart-job",
  title: "Restart a job",
  description: "Clear and re-run the failed tasks of a scheduled job's run, with approval; the request follows the run.",
  category: "Jobs",
  risk: "medium",
  lasting: false,
  inputSchema: restartJobSchema,
  unavailable: airflowUnavailable,
} as const satisfies WorkflowDefinition<RestartJobInput>;
