import type { AccessRequest } from "@prisma/client";
import type { Tx } from "../db";
import { policy } from "../policy/current";
import type { NotificationEvent } from "../policy/schema";
import { env } from "../env";
import { enqueueSlack, slackAppOn } from "../integrations/slack/outbox";
import { emailOn, enqueueEmails } from "./email";

const HEADLINES: Record<NotificationEvent, string> = {
  pending: "waits for approval",
  approved: "was approved",
  rejected: "was rejected",
  expiring: "expires soon",
  expired: "has expired",
  "break-glass": "was opened with BREAK-GLASS and needs a review",
};

/** A channel whose URL variable is unset is switched off (e.g. on a laptop without Slack). */
const channelsOn = () => policy().notifications.filter((c) => process.env[c.urlEnv]);

/** Whether any notification channel is switched on, so that the outbox needs flushing at all. */
export const notificationsOn = (): boolean => channelsOn().length > 0 || slackAppOn() || emailOn();

/**
 * Writes one delivery per subscribed channel (and the Slack app's, lib/integrations/slack), in the caller's transaction: the
 * notification exists exactly when the change it reports does. The worker sends it.
 */
export async function enqueueNotifications(tx: Tx, event: NotificationEvent, request: AccessRequest, requesterEmail: string): Promise<number> {
  const slack = await enqueueSlack(tx, event, request);
  const emails = await enqueueEmails(tx, event, request, requesterEmail);
  const channels = channelsOn().filter((c) => c.events.includes(event));
  if (channels.length === 0) return slack + emails;
  const target = policy().targets[request.targetId]?.title ?? request.targetId;
  const url = `${env().NEXTAUTH_URL}/requests/${request.id}`;
  const text = `${request.workflowId} on ${target} for ${requesterEmail} ${HEADLINES[event]}: ${url}`;
  const payload = {
    event,
    text,
    request: {
      id: request.id,
      url,
      workflowId: request.workflowId,
      targetId: request.targetId,
      requester: requesterEmail,
      status: request.status,
      breakGlass: request.breakGlass,
      expiresAt: request.expiresAt?.toISOString() ?? null,
    },
  };
  await tx.notificationDelivery.createMany({
    data: channels.map((c) => ({ channel: c.name, event, requestId: request.id, payload })),
  });
  return channels.length + slack + emails;
}
