import type { AccessRequest } from "@prisma/client";
import nodemailer, { type Transporter } from "nodemailer";
import type { Tx } from "../db";
import { env } from "../env";
import { partyMembers } from "../identity/parties";
import { policy } from "../policy/current";
import { requestStages } from "../policy/stages";
import { formatDuration } from "../policy/duration";
import type { NotificationEvent } from "../policy/schema";
import { getWorkflow } from "../workflows/registry";
import { composeEmail, type EmailMessage } from "./email-message";

/**
 * E-mail notifications through the outbox: one delivery row per recipient, written in the
 * transaction of the change it reports, sent by the worker with the outbox's lease and
 * retries. The delivery id is the mail's Message-ID, so a retry after a lost answer is a
 * duplicate a mail system (or a person's client) can recognise.
 *
 * Who is told: for a request waiting on a stage, the people who may approve that stage
 * now (approver role, in the stage's groups, outside the requester's party, not yet
 * decided); for a break-glass grant, the people who may review it; for an outcome, the
 * requester. People who turned e-mail off on their settings page, deactivated people and
 * service identities get none.
 */

/** Not a policy channel name (those are lower-case ids), so the two can never collide. */
export const EMAIL_CHANNEL = "@email";

export const emailOn = (): boolean => Boolean(env().LATCHKEY_SMTP_URL);

const FOR_APPROVERS: readonly NotificationEvent[] = ["pending", "break-glass"];

export interface EmailPayload extends EmailMessage {
  to: string;
}

async function recipients(tx: Tx, event: NotificationEvent, request: AccessRequest): Promise<string[]> {
  const reachable = { active: true, kind: "person" as const, emailNotifications: true };
  if (!FOR_APPROVERS.includes(event)) {
    const requester = await tx.user.findFirst({ where: { id: request.requesterId, ...reachable }, select: { email: true } });
    return requester ? [requester.email] : [];
  }
  const stages = requestStages(request);
  const groups = event === "break-glass" ? [...new Set(stages.flatMap((s) => s.groups))] : request.currentStageGroups;
  const approvers = await tx.user.findMany({
    where: {
      ...reachable,
      requestOnly: false,
      roles: { has: "approver" },
      groups: { hasSome: groups },
      id: { notIn: await partyMembers(tx, request.requesterId) },
      decisions: { none: { requestId: request.id } },
    },
    select: { email: true },
    orderBy: { email: "asc" },
  });
  return approvers.map((a) => a.email);
}

async function decisionOf(tx: Tx, event: NotificationEvent, request: AccessRequest): Promise<{ by: string | null; comment: string | null }> {
  if (event !== "approved" && event !== "rejected") return { by: null, comment: null };
  if (request.autoApprovedBy) return { by: `policy rule ${request.autoApprovedBy}`, comment: null };
  const last = await tx.approval.findFirst({
    where: { requestId: request.id },
    orderBy: { createdAt: "desc" },
    include: { approver: { select: { email: true } } },
  });
  return { by: last?.approver.email ?? null, comment: last?.comment || null };
}

/** Queues one e-mail per person concerned, in the caller's transaction. Returns how many. */
export async function enqueueEmails(tx: Tx, event: NotificationEvent, request: AccessRequest, requesterEmail: string): Promise<number> {
  if (!emailOn()) return 0;
  const to = await recipients(tx, event, request);
  if (to.length === 0) return 0;
  const target = policy().targets[request.targetId];
  const stages = requestStages(request);
  const stage = stages[request.currentStage];
  const decision = await decisionOf(tx, event, request);
  const role = (request.input as { role?: unknown }).role;
  const message = (audience: "approver" | "requester") =>
    composeEmail({
      event,
      audience,
      requester: requesterEmail,
      workflow: getWorkflow(request.workflowId)?.title ?? request.workflowId,
      target: target?.title ?? request.targetId,
      environment: target?.environment ?? "unknown environment",
      role: typeof role === "string" ? role : null,
      duration: request.durationSeconds ? formatDuration(request.durationSeconds) : null,
      justification: request.justification,
      ticket: request.ticketKey ? { key: request.ticketKey, url: request.ticketUrl } : null,
      stage: stage ? { name: stage.name, groups: event === "break-glass" ? [...new Set(stages.flatMap((s) => s.groups))] : stage.groups } : null,
      decidedBy: decision.by,
      comment: decision.comment,
      expiresAt: request.expiresAt ? request.expiresAt.toISOString().replace("T", " ").slice(0, 16) + " UTC" : null,
      url: `${env().NEXTAUTH_URL}/requests/${request.id}`,
    });
  const body = message(FOR_APPROVERS.includes(event) ? "approver" : "requester");
  await tx.notificationDelivery.createMany({
    data: to.map((address) => ({ channel: EMAIL_CHANNEL, event, requestId: request.id, payload: { ...body, to: address } satisfies EmailPayload })),
  });
  return to.length;
}

let transport: { url: string; transporter: Transporter } | undefined;

function transporter(url: string): Transporter {
  if (transport?.url !== url) transport = { url, transporter: nodemailer.createTransport(url) };
  return transport.transporter;
}

/** Sends one queued e-mail; throws (and the outbox retries) when the server does not accept it. */
export async function sendEmail(deliveryId: string, payload: EmailPayload): Promise<void> {
  const url = env().LATCHKEY_SMTP_URL;
  if (!url) throw new Error("LATCHKEY_SMTP_URL is not set");
  await transporter(url).sendMail({
    from: env().LATCHKEY_SMTP_FROM,
    to: payload.to,
    subject: payload.subject,
    text: payload.text,
    html: payload.html,
    messageId: `<${deliveryId}@latchkey>`,
    headers: { "X-Latchkey-Delivery": deliveryId },
  });
}
