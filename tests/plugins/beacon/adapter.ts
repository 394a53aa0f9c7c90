import { z } from "zod";
import { configNouns } from "@/lib/config/nouns";
import { defineIntegration } from "@/lib/integrations/adapter";

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
