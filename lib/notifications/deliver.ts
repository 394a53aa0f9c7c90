import { db } from "../db";
import { policy } from "../policy/current";
import { SlackRetryLater } from "../integrations/slack/client";
import { deliverSlack } from "../integrations/slack/deliver";
import { isSlackChannel } from "../integrations/slack/outbox";
import { EMAIL_CHANNEL, sendEmail, type EmailPayload } from "./email";
import { signedHeaders } from "./signature";

/** Attempts before a delivery is marked failed (and shown to admins). */
export const MAX_ATTEMPTS = 6;
const LEASE_SECONDS = 60;

export function backoffSeconds(attempt: number): number {
  return Math.min(2 ** attempt, 300);
}

interface Payload {
  text: string;
}

/** `deliveryId` is the outbox row's id: the same on every retry, so receivers can drop duplicates. */
async function send(channelName: string, deliveryId: string, payload: unknown): Promise<void> {
  if (isSlackChannel(channelName)) return deliverSlack(deliveryId, payload);
  if (channelName === EMAIL_CHANNEL) return sendEmail(deliveryId, payload as EmailPayload);
  const channel = policy().notifications.find((c) => c.name === channelName);
  if (!channel) throw new Error(`channel "${channelName}" is no longer in the policy`);
  const url = process.env[channel.urlEnv];
  if (!url) throw new Error(`${channel.urlEnv} is not set`);
  const body = JSON.stringify(channel.kind === "slack" ? { text: (payload as Payload).text } : payload);
  const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "Latchkey" };
  if (channel.kind === "webhook") {
    const secret = process.env[channel.secretEnv!];
    if (!secret) throw new Error(`${channel.secretEnv} is not set`);
    Object.assign(headers, signedHeaders(secret, `msg_${deliveryId}`, Math.floor(Date.now() / 1000), body));
  }
  const response = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`HTTP ${response.status} from ${new URL(url).host}`);
}

/**
 * Sends the deliveries that are due. Each is claimed with a lease first, so several
 * workers never send one twice at once. Returns when the next retry is due, if any.
 */
export async function flushNotifications(limit = 50): Promise<{ delivered: number; failed: number; retryAt: Date | null }> {
  const rows = await db.$queryRaw<{ id: string; channel: string; payload: unknown; attempts: number; createdAt: Date }[]>`
    UPDATE "NotificationDelivery" SET "nextAttemptAt" = now() + make_interval(secs => ${LEASE_SECONDS})
    WHERE id IN (
      SELECT id FROM "NotificationDelivery"
      WHERE status = 'pending' AND "nextAttemptAt" <= now()
      ORDER BY "createdAt" LIMIT ${limit} FOR UPDATE SKIP LOCKED)
    RETURNING id, channel, payload, attempts, "createdAt"`;
  // RETURNING keeps no order: sent oldest first, a request's "approved" goes out before its "expiring".
  const claimed = rows.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  let delivered = 0;
  let failed = 0;
  /** Once Slack answers 429, no Slack delivery is tried again before its Retry-After. */
  let slackPausedUntil: Date | null = null;
  for (const row of claimed) {
    const attempts = row.attempts + 1;
    if (slackPausedUntil && isSlackChannel(row.channel)) {
      await db.notificationDelivery.update({ where: { id: row.id }, data: { nextAttemptAt: slackPausedUntil } });
      continue;
    }
    try {
      await send(row.channel, row.id, row.payload);
      await db.notificationDelivery.update({ where: { id: row.id }, data: { status: "delivered", attempts, deliveredAt: new Date(), lastError: null } });
      delivered += 1;
    } catch (error) {
      if (error instanceof SlackRetryLater) {
        // A rate limit is Slack asking to wait, not a failure: the attempt is not counted.
        slackPausedUntil = new Date(Date.now() + error.seconds * 1000);
        await db.notificationDelivery.update({ where: { id: row.id }, data: { lastError: error.message, nextAttemptAt: slackPausedUntil } });
        continue;
      }
      const finalAttempt = attempts >= MAX_ATTEMPTS;
      await db.notificationDelivery.update({
        where: { id: row.id },
        data: {
          attempts,
          lastError: (error as Error).message.slice(0, 500),
          status: finalAttempt ? "failed" : "pending",
          nextAttemptAt: new Date(Date.now() + backoffSeconds(attempts) * 1000),
        },
      });
      if (finalAttempt) failed += 1;
    }
  }
  const next = await db.notificationDelivery.findFirst({ where: { status: "pending" }, orderBy: { nextAttemptAt: "asc" }, select: { nextAttemptAt: true } });
  return { delivered, failed, retryAt: next?.nextAttemptAt ?? null };
}
