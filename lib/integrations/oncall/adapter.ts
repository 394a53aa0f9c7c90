import { z } from "zod";
import { defineIntegration } from "../adapter";

/**
 * On-call services (PagerDuty, Opsgenie): their tokens and base URLs (environment). Their
 * policy block, an on-call schedule (./schema.ts), sits on approval stages and auto-approve
 * rules rather than on targets, so lib/policy/schema.ts places it there itself.
 */
export const oncall = defineIntegration({
  name: "oncall",
  settings: {
    /** On-call services read by on-call rules: API tokens (rules needing an unset one never apply) and base URLs. */
    LATCHKEY_PAGERDUTY_TOKEN: z.string().min(1).optional(),
    LATCHKEY_PAGERDUTY_URL: z.string().url().default("https://api.pagerduty.com"),
    LATCHKEY_OPSGENIE_TOKEN: z.string().min(1).optional(),
    LATCHKEY_OPSGENIE_URL: z.string().url().default("https://api.opsgenie.com"),
  },
  health: () => import("./health"),
});
