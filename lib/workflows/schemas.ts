import type { z } from "zod";
import { triggerDagSchema } from "../integrations/airflow/schema";
import { openRouteSchema } from "../integrations/haproxy/schema";
import { databaseAccessSchema } from "../integrations/postgres/schema";
import { restartJobSchema } from "./restart-job/schema";
import { temporaryAccessSchema } from "./temporary-access/schema";

/**
 * Every workflow's form schema, importable by the browser (no server code here), so the
 * generated form validates with the very schema the server uses.
 */
export const WORKFLOW_SCHEMAS: Record<string, z.ZodObject> = {
  "temporary-access": temporaryAccessSchema,
  "open-route": openRouteSchema,
  "database-access": databaseAccessSchema,
  "trigger-dag": triggerDagSchema,
  "restart-job": restartJobSchema,
};
