import { z } from "zod";
import { configNouns } from "@/lib/config/nouns";
import { defineIntegration, missingSettings } from "@/lib/integrations/adapter";
import type { TargetDefinition } from "@/lib/policy/schema";
import type { Environment, Unavailable } from "@/lib/workflows/types";

/**
 * A test-only integration, added the way docs/ARCHITECTURE.md says ("Add an integration"):
 * "Beacon", an HTTP service with one lamp per channel. A target names its channel in a
 * `beacon` block; the service's URL comes from LATCHKEY_BEACON_URL.
 */
export const beaconBlock = z
  .strictObject({
    channel: z
      .string()
      .regex(/^[a-z]+$/, { message: "must be a channel name in lower-case letters" })
      .describe("The lamp this target lights."),
  })
  .register(configNouns, { noun: "a target's beacon block" });

export const beacon = defineIntegration({
  name: "beacon",
  targetBlocks: { beacon: beaconBlock.optional().describe("For targets with a lamp: which one.") },
  settings: { LATCHKEY_BEACON_URL: z.string().url({ message: "must be the beacon service's http(s) URL" }).optional() },
  health: () => import("./health"),
});

/** The target's beacon block: a test's block is checked by the policy schema but not in its static type. */
export const beaconOf = (target: TargetDefinition): z.infer<typeof beaconBlock> | undefined => (target as { beacon?: z.infer<typeof beaconBlock> }).beacon;

export function beaconUnavailable(target: TargetDefinition, env: Environment): Unavailable | null {
  return beaconOf(target)
    ? missingSettings("The beacon service", ["LATCHKEY_BEACON_URL"], env)
    : { reason: `${target.title} has no beacon in the policy.`, missing: [] };
}
