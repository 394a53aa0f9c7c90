import { z } from "zod";
import { durationField, justificationField, targetField } from "../../workflows/common-fields";

/** The "Open a route through the proxy" form. Shared by the browser and the server. */
export const openRouteSchema = z
  .object({
    targetId: targetField.meta({ label: "Service", help: "The internal service to reach through the proxy.", optionsFrom: "policy:targets" }),
    durationMinutes: durationField,
    justification: justificationField,
  })
  .strict();

export type OpenRouteInput = z.infer<typeof openRouteSchema>;
