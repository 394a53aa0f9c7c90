import { z } from "zod";
import { justificationField, targetField } from "@/lib/workflows/common-fields";
import type { WorkflowDefinition } from "@/lib/workflows/types";
import { beaconUnavailable } from "../beacon/availability";

/** A test-only workflow, added the way docs/ARCHITECTURE.md says ("Add a workflow"): light a target's beacon, with approval. */
export const pingBeaconSchema = z
  .object({
    targetId: targetField,
    colour: z.enum(["green", "amber"], { message: "Choose green or amber." }).meta({ label: "Colour" }),
    justification: justificationField,
  })
  .strict();

export type PingBeaconInput = z.infer<typeof pingBeaconSchema>;

export const pingBeaconDefinition = {
  id: "ping-beacon",
  title: "Light a beacon",
  description: "Light the lamp of a target, with approval.",
  category: "Test",
  risk: "low",
  lasting: false,
  inputSchema: pingBeaconSchema,
  unavailable: beaconUnavailable,
} as const satisfies WorkflowDefinition<PingBeaconInput>;
