import { z } from "zod";
import { justificationField, targetField } from "../../workflows/common-fields";

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
