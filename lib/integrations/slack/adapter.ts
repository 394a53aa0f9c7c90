import { z } from "zod";
import { configNouns } from "../../config/nouns";
import { defineIntegration } from "../adapter";

/** The Slack app: the channels each target posts to (policy), and the app's token, signing secret and API (environment). */
export const slack = defineIntegration({
  name: "slack",
  targetBlocks: {
    slack: z
      .strictObject({
        channels: z
          .array(z.string().regex(/^[CG][A-Z0-9]{2,}$/, { message: "must be a Slack channel id (e.g. C0123ABCD), not a name" }))
          .min(1, { message: "name at least one channel" })
          .describe("Slack channel ids each request on this target is posted to while it waits for a stage (the app must be a member)."),
        buttons: z
          .boolean()
          .default(false)
          .describe("Whether the messages carry Approve and Reject buttons; off by default, so approvers decide in the portal."),
      })
      .register(configNouns, { noun: "a target's slack block" })
      .optional()
      .describe("For the Slack app (LATCHKEY_SLACK_BOT_TOKEN): where requests on this target are posted, and whether approvers may decide there."),
  },
  settings: {
    /** The Slack app's bot token (xoxb-...); the Slack app is off while it is unset. */
    LATCHKEY_SLACK_BOT_TOKEN: z
      .string()
      .regex(/^xoxb-[\w-]+$/, { message: 'must be a bot token, "xoxb-..."' })
      .optional(),
    /** The Slack app's signing secret, verifying button clicks (X-Slack-Signature); buttons are refused while it is unset. */
    LATCHKEY_SLACK_SIGNING_SECRET: z.string().min(16, { message: "must be the app's signing secret (Basic Information → App Credentials)" }).optional(),
    /** Slack's Web API base URL; only changed to point at a test double. */
    LATCHKEY_SLACK_API_URL: z.string().url().default("https://slack.com/api/"),
  },
  health: () => import("./health"),
});
