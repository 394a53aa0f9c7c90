import { z } from "zod";
import { airflowUnavailable } from "../../integrations/airflow/availability";
import { justificationField, targetField } from "../common-fields";
import type { WorkflowDefinition } from "../types";

/** The "Trigger a DAG run" form. Shared by the browser and the server. */
export const triggerDagSchema = z
  .object({
    targetId: targetField.meta({ label: "Job", help: "The scheduled job (DAG) to run.", optionsFrom: "policy:targets" }),
    conf: z
      .string()
      .trim()
      .max(10_000, { message: "Keep the configuration under 10,000 characters." })
      .refine(
        (text) => {
          try {
            const value: unknown = JSON.parse(text || "{}");
            return typeof value === "object" && value !== null && !Array.isArray(value);
          } catch {
            return false;
          }
        },
        { message: 'Give the configuration as a JSON object, e.g. {"day": "2026-11-24"}.' },
      )
      .default("{}")
      .meta({ label: "Run configuration (JSON)", help: "Passed to the run as its conf. Leave {} for none.", kind: "longtext" }),
    justification: justificationField,
  })
  .strict();

export type TriggerDagInput = z.infer<typeof triggerDagSchema>;

/** Trigger a DAG run, as the catalog and the form show it; client-safe. */
export const triggerDagDefinition = {
  id: "trigger-dag",
  title: "Trigger a DAG run",
  description: "Start a run of a scheduled job with a configuration, with approval; the request follows the run.",
  category: "Jobs",
  risk: "medium",
  lasting: false,
  inputSchema: triggerDagSchema,
  unavailable: airflowUnavailable,
} as const satisfies WorkflowDefinition<TriggerDagInput>;
