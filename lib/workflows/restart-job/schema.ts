import { z } from "zod";
import { justificationField, targetField } from "../common-fields";

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
      .meta({ label: "Clear", help: "Which tasks of the run start again." }),
    maxActiveTasks: z.coerce
      .number({ message: "Enter a number." })
      .int({ message: "Enter a whole number." })
      .min(1, { message: "At least 1." })
      .max(32, { message: "At most 32." })
      .meta({ label: "Parallel tasks", help: "How many tasks may run at once while catching up." }),
    dryRun: z.boolean().default(false).meta({ label: "Dry run", help: "Show what would be cleared without clearing it." }),
    justification: justificationField,
  })
  .strict();

export type RestartJobInput = z.infer<typeof restartJobSchema>;
