import { z } from "zod";
import { postgresUnavailable } from "../../integrations/postgres/availability";
import { durationField, justificationField, targetField } from "../common-fields";
import type { WorkflowDefinition } from "../types";

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

/** Database access, as the catalog and the form show it; client-safe. */
export const databaseAccessDefinition = {
  id: "database-access",
  title: "Database access",
  description: "A personal PostgreSQL login with the privileges of a role, expiring by itself; open sessions end with it.",
  category: "Access",
  risk: "high",
  lasting: true,
  inputSchema: databaseAccessSchema,
  unavailable: postgresUnavailable,
} as const satisfies WorkflowDefinition<DatabaseAccessInput>;
