import { defineIntegration } from "../adapter";
import { ticketRuleSchema } from "./schema";

/** Ticket checks: a target's ticket rule, optionally checked in Jira or at an HTTP endpoint named by environment variables. */
export const tickets = defineIntegration({
  name: "tickets",
  targetBlocks: {
    ticket: ticketRuleSchema
      .optional()
      .describe("Require a ticket reference in the justification, optionally one that exists and is open in Jira or at an HTTP check."),
  },
  health: () => import("./health"),
});
