import type { AccessRequest, Prisma } from "@prisma/client";
import type { Tx } from "../../db";
import { env } from "../../env";
import { policy } from "../../policy/current";
import { ownEntry } from "../../text";

/**
 * Writes the Slack app's deliveries into the notification outbox, in the caller's
 * transaction, beside the policy's channels: they get the same lease, retries and admin
 * page. Rows are named `slack:<channel id>` or `slack:dm`, names a policy channel (lower
 * case, no colon) can never take. What a message says is read when it is sent, so a
 * delivery that waited for a rate limit still shows the request as it is then.
 */

export type SlackEvent = "pending" | "progress" | "approved" | "rejected" | "expiring" | "expired" | "break-glass" | "closed";

export const SLACK_DM_CHANNEL = "slack:dm";
export const isSlackChannel = (name: string) => name.startsWith("slack:");

/** Whether the Slack app is switched on (a bot token is configured). */
export const slackAppOn = (): boolean => Boolean(env().LATCHKEY_SLACK_BOT_TOKEN);

/** The target's Slack block, when the app is on and the policy names channels for it. */
export function slackTargetOf(targetId: string) {
  return slackAppOn() ? (ownEntry(policy().targets, targetId)?.slack ?? null) : null;
}

/** Posts (or refreshes) the channel messages when a request waits or is opened by break-glass; only refreshes them otherwise. */
const POSTS: readonly SlackEvent[] = ["pending", "break-glass"];
const UPDATES_MESSAGES: readonly SlackEvent[] = ["pending", "progress", "approved", "rejected", "expired", "break-glass", "closed"];
const DIRECT: readonly SlackEvent[] = ["approved", "rejected", "expiring", "expired"];

export async function enqueueSlack(tx: Tx, event: SlackEvent, request: AccessRequest): Promise<number> {
  const slack = slackTargetOf(request.targetId);
  if (!slack) return 0;
  const rows: Prisma.NotificationDeliveryCreateManyInput[] = [];
  if (UPDATES_MESSAGES.includes(event)) {
    // An update for a message whose post is still in the outbox waits for it (deliver.ts).
    const post = POSTS.includes(event);
    for (const channel of slack.channels)
      rows.push({ channel: `slack:${channel}`, event, requestId: request.id, payload: { kind: "message", requestId: request.id, channel, post } });
  }
  if (DIRECT.includes(event)) rows.push({ channel: SLACK_DM_CHANNEL, event, requestId: request.id, payload: { kind: "dm", requestId: request.id, event } });
  if (rows.length) await tx.notificationDelivery.createMany({ data: rows });
  return rows.length;
}
