import { z } from "zod";
import { durationField, justificationField, targetField } from "../common-fields";

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
