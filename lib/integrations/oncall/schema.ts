import { z } from "zod";
import { configNouns } from "../../config/nouns";

/** A schedule in an on-call service, named in a policy rule. The service's token comes from the environment. */
export const ON_CALL_PROVIDERS = ["pagerduty", "opsgenie"] as const;
export type OnCallProvider = (typeof ON_CALL_PROVIDERS)[number];

export const onCallScheduleSchema = z
  .strictObject({
    provider: z.enum(ON_CALL_PROVIDERS).describe("pagerduty (token in LATCHKEY_PAGERDUTY_TOKEN) or opsgenie (token in LATCHKEY_OPSGENIE_TOKEN)."),
    schedule: z
      .string()
      .regex(/^[\w.-]+$/, { message: "must be a schedule id (PagerDuty, e.g. PI7DH85) or a schedule id or name (Opsgenie)" })
      .describe("The schedule's id (PagerDuty), or its id or name (Opsgenie)."),
  })
  .register(configNouns, { noun: "an on-call schedule" });

export type OnCallSchedule = z.infer<typeof onCallScheduleSchema>;

/** The pseudo-group a stage with an on-call schedule lists, and which whoever is on call joins while deciding. */
export const onCallGroup = (s: OnCallSchedule) => `on-call:${s.provider}:${s.schedule}`;
