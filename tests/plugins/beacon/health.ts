import { probe, unsetSettings, type IntegrationHealth } from "@/lib/integrations/adapter";
import { beaconOf } from "./availability";

/** The beacon service answers when it shows the target's lamp. */
export const health: IntegrationHealth = {
  target(target, env) {
    const block = beaconOf(target);
    if (!block) return null;
    const url = env.LATCHKEY_BEACON_URL;
    if (!url) return unsetSettings("LATCHKEY_BEACON_URL");
    return probe(async () => {
      const answer = await fetch(new URL(`/lamps/${block.channel}`, url));
      if (!answer.ok) throw new Error(`the beacon service answered ${answer.status}`);
    });
  },
};
