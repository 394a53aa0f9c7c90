import { z } from "zod";
import { haproxyUnavailable } from "../../integrations/haproxy/availability";
import { durationField, justificationField, targetField } from "../common-fields";
import type { WorkflowDefinition } from "../types";

/** The "Open a route through the proxy" form. Shared by the browser and the server. */
export const openRouteSchema = z
  .object({
    targetId: targetField.meta({ label: "Service", help: "The internal service to reach through the proxy.", optionsFrom: "policy:targets" }),
    durationMinutes: durationField,
    justification: justificationField,
  })
  .strict();

export type OpenRouteInput = z.infer<typeof openRouteSchema>;

/** Open a route through the proxy, as the catalog and the form show it; client-safe. */
export const openRouteDefinition = {
  id: "open-route",
  title: "Open a route through the proxy",
  description: "Reach an internal service through HAProxy with a signed credential that HAProxy verifies; the route closes by itself.",
  category: "Access",
  risk: "medium",
  lasting: true,
  inputSchema: openRouteSchema,
  unavailable: haproxyUnavailable,
} as const satisfies WorkflowDefinition<OpenRouteInput>;
