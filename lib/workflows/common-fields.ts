import { z } from "zod";

/** Fields most workflows share; each workflow's schema spreads the ones it needs. */
export const targetField = z
  .string({ message: "Choose a target." })
  .min(1, { message: "Choose a target." })
  .meta({ label: "Target", help: "The service, environment or job this is for.", optionsFrom: "policy:targets" });

export const durationField = z.coerce
  .number({ message: "Enter a duration in minutes." })
  .int({ message: "Enter whole minutes." })
  .positive({ message: "Enter a duration of at least one minute." })
  .meta({ label: "Duration (minutes)", help: "The clock starts when the request is approved.", kind: "duration" });

export const justificationField = z
  .string({ message: "Say why you need this." })
  .trim()
  .min(10, { message: "Say why you need this access (at least 10 characters)." })
  .max(1000, { message: "Keep the justification under 1000 characters." })
  .meta({ label: "Justification", help: "Why you need it: a ticket, an incident, a task. Approvers and auditors read this.", kind: "longtext" });
