import type { z } from "zod";
import { missingSettings } from "@/lib/integrations/adapter";
import type { TargetDefinition } from "@/lib/policy/schema";
import type { Environment, Unavailable } from "@/lib/workflows/types";
import type { beaconBlock } from "./adapter";

/** What a target says about its beacon, and whether the beacon workflow can run on it here: pure, for the workflow's client-safe definition. */
/** The target's beacon block: a test's block is checked by the policy schema but not in its static type. */
export const beaconOf = (target: TargetDefinition): z.infer<typeof beaconBlock> | undefined => (target as { beacon?: z.infer<typeof beaconBlock> }).beacon;

export function beaconUnavailable(target: TargetDefinition, env: Environment): Unavailable | null {
  return beaconOf(target)
    ? missingSettings("The beacon service", ["LATCHKEY_BEACON_URL"], env)
    : { reason: `${target.title} has no beacon in the policy.`, missing: [] };
}
