import { z } from "zod";
import { configNouns } from "../../config/nouns";
import { envName } from "../../policy/fields";

/**
 * A target's ticket rule: the justification must name a ticket matching `pattern`, and,
 * when a check is configured, that ticket must exist and be open in Jira or at an HTTP
 * endpoint. URLs and credentials come from the environment variables named here.
 */

const pattern = z
  .string()
  .min(1)
  .superRefine((text, ctx) => {
    try {
      new RegExp(text, "u");
    } catch (error) {
      ctx.addIssue({ code: "custom", message: `is not a regular expression: ${(error as Error).message}` });
    }
  });

export const jiraCheckSchema = z
  .strictObject({
    urlEnv: envName.describe("Environment variable holding the Jira site's base URL (e.g. https://example.atlassian.net)."),
    userEnv: envName.describe("Environment variable holding the Jira account's e-mail address (basic auth with an API token)."),
    tokenEnv: envName.describe("Environment variable holding the Jira API token."),
  })
  .register(configNouns, { noun: "a ticket rule's jira block" });

export const httpCheckSchema = z
  .strictObject({
    urlEnv: envName.describe(
      'Environment variable holding the check URL, with "{key}" where the ticket key goes; it answers 404 for an unknown ticket or 200 with {"open": true|false}.',
    ),
    tokenEnv: envName.optional().describe("Environment variable holding a bearer token sent to the check URL."),
  })
  .register(configNouns, { noun: "a ticket rule's http block" });

export const ticketRuleSchema = z
  .strictObject({
    pattern: pattern.describe('Regular expression a ticket key in the justification must match, e.g. "(INC|CHG)-[0-9]+".'),
    example: z.string().min(1).optional().describe('A ticket key shown in the error when none is given, e.g. "INC-123".'),
    link: z
      .string()
      .regex(/^https?:\/\/.*\{key\}/, { message: 'must be an http(s) URL containing "{key}"' })
      .optional()
      .describe('Link to a ticket, with "{key}" where the key goes; defaults to Jira\'s /browse/{key} when a jira check is set.'),
    jira: jiraCheckSchema.optional().describe("Check that the ticket exists and is not done in Jira (REST API v3)."),
    http: httpCheckSchema.optional().describe("Check that the ticket exists and is open at an HTTP endpoint of your own."),
  })
  .refine((t) => !(t.jira && t.http), { message: "give either a jira or an http check, not both" })
  .register(configNouns, { noun: "a target's ticket rule" });

export type TicketRule = z.infer<typeof ticketRuleSchema>;
