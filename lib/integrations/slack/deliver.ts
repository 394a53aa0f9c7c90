import { z } from "zod";
import { db } from "../../db";
import { env } from "../../env";
import { requestStages } from "../../policy/stages";
import { policy } from "../../policy/current";
import { describeRequest } from "../../approvals/queries";
import { configuredSlackApp, SlackApiError } from "./client";
import { directMessage, MESSAGE_EVENT_TYPE, requestMessage, type RequestSummary } from "./messages";
import { slackTargetOf } from "./outbox";

/**
 * Sends one Slack app delivery from the outbox. Channel messages are posted once per
 * request and channel (the message's ts is kept) and updated in place afterwards; each post
 * carries the delivery id in its metadata, the same on every retry, so a reader can drop a
 * duplicate left by a crash between Slack's answer and the commit.
 */

const payloadSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("message"), requestId: z.string(), channel: z.string(), post: z.boolean() }),
  z.object({ kind: z.literal("dm"), requestId: z.string(), event: z.enum(["approved", "rejected", "expiring", "expired"]) }),
]);

/** The request as the Slack app shows it, or null when it is gone. */
export async function requestSummary(requestId: string): Promise<RequestSummary | null> {
  const request = await db.accessRequest.findUnique({
    where: { id: requestId },
    include: { requester: { select: { email: true } }, decisions: { include: { approver: { select: { email: true } } }, orderBy: { createdAt: "asc" } } },
  });
  if (!request) return null;
  const stages = requestStages(request);
  const stage = stages[request.currentStage] ?? stages[stages.length - 1]!;
  const last = request.decisions.at(-1);
  const input = request.input as Record<string, unknown>;
  return {
    id: request.id,
    url: `${env().NEXTAUTH_URL}/requests/${request.id}`,
    workflowTitle: describeRequest(request).workflowTitle,
    targetTitle: policy().targets[request.targetId]?.title ?? request.targetId,
    requesterEmail: request.requester.email,
    role: typeof input.role === "string" ? input.role : null,
    durationSeconds: request.durationSeconds,
    justification: request.justification,
    status: request.status,
    breakGlass: request.breakGlass,
    stage: {
      name: stage.name,
      index: request.currentStage,
      count: stages.length,
      groups: stage.groups,
      required: stage.required,
      approvals: request.decisions.filter((d) => d.stage === request.currentStage && d.decision === "approve").length,
    },
    decidedBy: last ? { email: last.approver.email, decision: last.decision, comment: last.comment } : null,
    expiresAt: request.expiresAt,
  };
}

/** Whether Approve and Reject buttons are shown: the target opts in and clicks can be verified. */
export const buttonsOn = (targetId: string) => Boolean(slackTargetOf(targetId)?.buttons && env().LATCHKEY_SLACK_SIGNING_SECRET);

export async function deliverSlack(deliveryId: string, raw: unknown): Promise<void> {
  const slack = configuredSlackApp();
  if (!slack) throw new Error("LATCHKEY_SLACK_BOT_TOKEN is not set");
  const payload = payloadSchema.parse(raw);
  const summary = await requestSummary(payload.requestId);
  if (!summary) return;
  const request = await db.accessRequest.findUniqueOrThrow({ where: { id: payload.requestId }, select: { targetId: true } });
  if (payload.kind === "dm") {
    const userId = await slack.userIdByEmail(summary.requesterEmail);
    // Nobody in the workspace has the requester's address: there is no one to tell.
    if (userId) await slack.postMessage(userId, directMessage(summary, payload.event));
    return;
  }
  const content = requestMessage(summary, buttonsOn(request.targetId));
  const posted = await db.slackMessage.findUnique({ where: { requestId_channel: { requestId: payload.requestId, channel: payload.channel } } });
  if (posted) {
    try {
      await slack.updateMessage(posted.channel, posted.ts, content);
    } catch (error) {
      // Deleted in Slack by someone: nothing is left to update.
      if (!(error instanceof SlackApiError && error.code === "message_not_found")) throw error;
    }
    return;
  }
  if (!payload.post) {
    const waiting = await db.notificationDelivery.count({
      where: {
        requestId: payload.requestId,
        channel: `slack:${payload.channel}`,
        status: "pending",
        id: { not: deliveryId },
        payload: { path: ["post"], equals: true },
      },
    });
    if (waiting) throw new Error("the message to update is not posted yet");
    return;
  }
  const message = await slack.postMessage(payload.channel, content, {
    event_type: MESSAGE_EVENT_TYPE,
    event_payload: { request_id: payload.requestId, delivery_id: deliveryId },
  });
  await db.slackMessage.createMany({ data: [{ requestId: payload.requestId, channel: payload.channel, ts: message.ts, deliveryId }], skipDuplicates: true });
}
