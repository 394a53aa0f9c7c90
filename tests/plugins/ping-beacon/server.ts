import { ExecutionFailure, type InlineWorkflow } from "@/lib/workflows/types";
import { beaconOf } from "../beacon/availability";
import { pingBeaconDefinition, type PingBeaconInput } from "./definition";

/** Lights the lamp in the approval's transaction: records which lamp and colour, for the audit trail. */
export const pingBeacon = {
  ...pingBeaconDefinition,
  kind: "inline",
  async execute({ target, input }) {
    const block = beaconOf(target);
    if (!block) throw new ExecutionFailure(`${target.title} has no beacon in the policy.`);
    return { audit: { channel: block.channel, colour: input.colour } };
  },
  async revoke() {
    // A lamp lit once is not taken back.
  },
} satisfies InlineWorkflow<PingBeaconInput, "ping-beacon">;
