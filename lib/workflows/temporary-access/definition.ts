import { z } from "zod";
import { durationField, justificationField, targetField } from "../common-fields";
import type { WorkflowDefinition } from "../types";

/** The "Temporary access" form. Shared by the browser and the server. */
export const temporaryAccessSchema = z
  .object({
    targetId: targetField,
    role: z
      .enum(["read", "write"], { message: "Choose read or write." })
      .meta({ label: "Role", help: "Ask for the least you need.", optionsFrom: "policy:roles" }),
    durationMinutes: durationField,
    justification: justificationField,
  })
  .strict();

export type TemporaryAccessInput = z.infer<typeof temporaryAccessSchema>;

/** Temporary access to a service, as the catalog and the form show it; client-safe. */
export const temporaryAccessDefinition = {
  id: "temporary-access",
  title: "Temporary access",
  description: "Time-boxed read or write access to a service, as a signed credential that expires by itself.",
  category: "Access",
  risk: "medium",
  lasting: true,
  inputSchema: temporaryAccessSchema,
} as const satisfies WorkflowDefinition<TemporaryAccessInput>;
