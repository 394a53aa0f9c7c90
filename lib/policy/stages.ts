import { z } from "zod";
import { ON_CALL_PROVIDERS } from "../integrations/oncall/schema";
import type { StageSnapshot } from "./evaluate";

/**
 * A request's approval stages as they were captured from the policy when it was made (the
 * request's JSON `stages` column). Parsed once where the column is read, so every caller
 * gets StageSnapshot[] instead of casting; a row that does not hold stages fails loudly here.
 */
const stageSnapshotSchema = z.object({
  name: z.string(),
  groups: z.array(z.string()),
  required: z.number(),
  oneFromEachGroup: z.boolean(),
  onCall: z.object({ provider: z.enum(ON_CALL_PROVIDERS), schedule: z.string() }).optional(),
}) satisfies z.ZodType<StageSnapshot>;

const stageSnapshotsSchema = z.array(stageSnapshotSchema);

/** The stages of a request, from its `stages` column. */
export function requestStages(request: { stages: unknown }): StageSnapshot[] {
  return stageSnapshotsSchema.parse(request.stages);
}

/** Stages as the JSON the column stores (plain objects, no absent keys). */
export function stagesJson(stages: readonly StageSnapshot[]) {
  return stages.map(({ onCall, ...stage }) => ({ ...stage, groups: [...stage.groups], ...(onCall ? { onCall: { ...onCall } } : {}) }));
}
