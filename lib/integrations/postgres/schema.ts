import { z } from "zod";
import { durationField, justificationField, targetField } from "../../workflows/common-fields";

/** The "Database access" form. Shared by the browser and the server. */
export const databaseAccessSchema = z
  .object({
    targetId: targetField.meta({ label: "Database", help: "The database and environment you need.", optionsFrom: "policy:targets" }),
    role: z
      .string({ message: "Choose an access level." })
      .min(1, { message: "Choose an access level." })
      .meta({ label: "Access", help: "What the login may do; ask for the least you need.", optionsFrom: "policy:roles" }),
    durationMinutes: durationField,
    justification: justificationField,
  })
  .strict();

export type DatabaseAccessInput = z.infer<typeof databaseAccessSchema>;
