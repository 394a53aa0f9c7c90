import type { AccessRequest, Prisma } from "@prisma/client";
import { actorOf, recordEvent, SYSTEM } from "../audit/record";
import { db, type Tx } from "../db";
import { conflict, forbidden, invalid, notFound, fieldErrorsOf } from "../errors";
import { policy } from "../policy/current";
import { breakGlassRefusal, evaluateRequest, sameParty, stagesOf, type Principal } from "../policy/evaluate";
import { requestStages, stagesJson } from "../policy/stages";
import { partiesOf } from "../identity/parties";
import { unavailability, unavailableMessage } from "../workflows/availability";
import { ownEntry } from "../text";
import { describeFields } from "../workflows/fields";
import { checkIntegrationOptions } from "../workflows/option-sources";
import type { WorkflowInput } from "../workflows/types";
import { enqueueNotifications } from "../notifications/outbox";
import { checkTicket, type TicketRef } from "../integrations/tickets/check";
import { shiftRecord } from "../integrations/oncall/lookup";
import { autoApprovalOf, type AutoApprovalOutcome } from "./on-call";
import { lockRequest, Moves, openRequest, queueFollowUps } from "./transition";
import { REQUEST_ONLY, inTransaction, workflowOf } from "./lifecycle";
import { activate } from "./execution";
import { watchWrites, type WriteView } from "./rows";

/**
 * Making a request: validated with its workflow's schema and the policy, recorded, then
 * waiting for its first stage or approved at once by an auto-approval rule. Break-glass
 * grants (and their review after the fact) and extensions are made here too.
 */

/** Validates the form with the workflow's schema and the request with the policy. */
async function validateRequest(who: Principal, workflowId: string, raw: unknown) {
  const workflow = workflowOf(workflowId);
  const parsed = workflow.inputSchema.safeParse(raw);
  if (!parsed.success) throw invalid("Some fields need attention.", fieldErrorsOf(parsed.error.issues));
  const input = parsed.data;
  // Ids from outside are looked up as own keys only: "constructor" or "__proto__" must not reach Object.prototype.
  if (ownEntry(ownEntry(policy().workflows, workflowId)?.targets, input.targetId) === undefined || ownEntry(policy().targets, input.targetId) === undefined) {
    const message = `"${input.targetId}" is not a target of this workflow.`;
    throw invalid(message, { targetId: message });
  }
  if (workflow.lasting && input.durationMinutes === undefined) throw invalid("Give a duration.", { durationMinutes: "Give a duration." });
  const durationSeconds = workflow.lasting ? input.durationMinutes! * 60 : undefined;
  const verdict = evaluateRequest(policy(), { workflowId, targetId: input.targetId, who, durationSeconds, accessRole: input.role });
  if (!verdict.ok) {
    if (verdict.field) throw invalid(verdict.message, { [verdict.field]: verdict.message });
    throw forbidden(verdict.message);
  }
  const target = policy().targets[input.targetId];
  const unavailable = target ? unavailability(workflowId, target) : null;
  // Refused before anyone approves: a request that could only fail afterwards wastes the approver's time and the requester's wait.
  if (unavailable) throw conflict(`${workflow.title} on ${target!.title} is unavailable: ${unavailableMessage(unavailable, who.roles.includes("admin"))}`);
  await checkIntegrationOptions(describeFields(workflow.inputSchema), { ...input }, who);
  const ticket = await checkTicket(target!, input.justification);
  if (!ticket.ok) throw ticket.code === "unavailable" ? conflict(ticket.message) : invalid(ticket.message, { justification: ticket.message });
  return { input, durationSeconds, rule: verdict.rule, ticket: ticket.ticket };
}

type RequestRule = Awaited<ReturnType<typeof validateRequest>>["rule"];

async function insertRequest(
  tx: Tx,
  who: Principal,
  workflowId: string,
  input: WorkflowInput,
  durationSeconds: number | undefined,
  rule: RequestRule,
  ticket: TicketRef | null,
  extra: Partial<Omit<Prisma.AccessRequestUncheckedCreateInput, "status">> = {},
) {
  const stages = stagesOf(rule);
  const pendingTimeout = rule.pendingTimeout ?? policy().defaults.pendingTimeout;
  const now = new Date();
  return openRequest(
    tx,
    {
      createdAt: now,
      workflowId,
      targetId: input.targetId,
      requesterId: who.id,
      input: { ...input },
      justification: input.justification,
      durationSeconds: durationSeconds ?? 0,
      stages: stagesJson(stages),
      currentStage: 0,
      currentStageGroups: stages[0]!.groups,
      pendingExpiresAt: new Date(now.getTime() + pendingTimeout * 1000),
      ticketKey: ticket?.key ?? null,
      ticketUrl: ticket?.url ?? null,
      ...extra,
    },
    {
      actor: actorOf(who),
      data: {
        workflowId,
        targetId: input.targetId,
        role: input.role ?? null,
        durationSeconds,
        justification: input.justification,
        stages: stages.map((st) => st.name),
        ...(ticket ? { ticket: ticket.key, ticketUrl: ticket.url } : {}),
      },
    },
  );
}

/**
 * Work a caller adds to the transaction that makes a request (the API's Idempotency-Key claim), so both commit or neither;
 * and the view of the request as the transaction leaves it, for a caller that shows it next (lib/approvals/rows.ts, WriteView).
 */
export interface CreateHooks {
  before?: (tx: Tx) => Promise<void>;
  after?: (tx: Tx, request: AccessRequest) => Promise<void>;
  view?: WriteView;
}

/**
 * Records a request. When an auto-approval rule of the policy matches, it is approved and
 * carried out at once, with the rule named in the audit trail; otherwise it waits for its
 * first approval stage.
 */
export async function createRequest(who: Principal, workflowId: string, raw: unknown, hooks: CreateHooks = {}): Promise<AccessRequest> {
  const { input, durationSeconds, rule, ticket } = await validateRequest(who, workflowId, raw);
  const auto = await autoApprovalOf(rule, { who, durationSeconds, accessRole: input.role });
  return inTransaction(async (tx) => {
    if (hooks.view) watchWrites(tx, hooks.view);
    await hooks.before?.(tx);
    const request = await insertRequest(tx, who, workflowId, input, durationSeconds, rule, ticket, auto.auto ? { autoApprovedBy: auto.auto.name } : {});
    const made = await awaitApprovalOrAutoApprove(tx, request, who, auto);
    await hooks.after?.(tx, made);
    return made;
  });
}

/** A new request either waits for its first stage (approvers are told) or, when a rule matches, is approved by it and carried out. */
async function awaitApprovalOrAutoApprove(
  tx: Tx,
  request: AccessRequest,
  who: Principal,
  { auto, shift, unknown }: AutoApprovalOutcome,
): Promise<AccessRequest> {
  if (!auto) {
    // An on-call rule whose service did not answer does not apply; the trail says why the request waits for a person.
    for (const u of unknown)
      await recordEvent(tx, {
        actor: SYSTEM,
        action: "request.on_call_unknown",
        requestId: request.id,
        data: { provider: u.provider, schedule: u.schedule, reason: u.reason },
      });
    await enqueueNotifications(tx, "pending", request, who.email);
    // It waits: its pending timeout and the notifications' flush.
    await queueFollowUps(tx, request);
    return request;
  }
  // Inserted in this transaction, so no one else can see the row yet.
  const moves = new Moves(request);
  await moves.to(tx, "approved", {
    actor: SYSTEM,
    action: "request.auto_approved",
    data: { rule: auto.name, ...(shift ? { onCall: shiftRecord(shift) } : {}) },
    patch: { decidedAt: new Date() },
  });
  const requester = await tx.user.findUniqueOrThrow({ where: { id: who.id } });
  return activate(tx, moves, request, requester, SYSTEM);
}

/**
 * Break-glass: a person the policy allows opens an emergency grant at once, with a
 * mandatory reason. It is flagged everywhere and stays open for review until an approver
 * signs it off.
 */
export async function breakGlass(who: Principal, workflowId: string, raw: unknown, reason: string): Promise<AccessRequest> {
  const why = reason.trim();
  if (why.length < 10) throw invalid("Say what the emergency is (at least 10 characters).", { reason: "Say what the emergency is (at least 10 characters)." });
  const { input, durationSeconds, rule, ticket } = await validateRequest(who, workflowId, raw);
  const refusal = breakGlassRefusal(rule, who, durationSeconds);
  if (refusal) throw forbidden(refusal);
  return inTransaction(async (tx) => {
    const request = await insertRequest(tx, who, workflowId, input, durationSeconds, rule, ticket, { breakGlass: true, breakGlassReason: why });
    const moves = new Moves(request);
    await moves.to(tx, "approved", { actor: actorOf(who), action: "request.break_glass", data: { reason: why }, patch: { decidedAt: new Date() } });
    const requester = await tx.user.findUniqueOrThrow({ where: { id: who.id } });
    const active = await activate(tx, moves, request, requester, actorOf(who));
    await enqueueNotifications(tx, "break-glass", active, who.email);
    return active;
  });
}

/** An approver signs off a break-glass grant after the fact. */
export async function reviewBreakGlass(who: Principal, input: { requestId: string; comment: string }): Promise<AccessRequest> {
  if (who.requestOnly) throw forbidden(REQUEST_ONLY);
  const comment = input.comment.trim();
  if (!comment) throw invalid("Say what you reviewed.", { comment: "Say what you reviewed." });
  return inTransaction(async (tx) => {
    await lockRequest(tx, input.requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: input.requestId } });
    if (!request.breakGlass) throw conflict("This is not a break-glass request.");
    if (request.reviewedAt) throw conflict("This break-glass grant was already reviewed.");
    if (request.requesterId === who.id) throw forbidden("You cannot review your own break-glass grant.");
    if (sameParty(await partiesOf(tx, [request.requesterId, who.id]), request.requesterId, who.id)) {
      throw forbidden("You cannot review this break-glass grant: a service identity and its owners count as one party, and the requester is in yours.");
    }
    const groups = requestStages(request).flatMap((st) => st.groups);
    if (!who.roles.includes("approver") || !groups.some((g) => who.groups.includes(g))) {
      throw forbidden(`Only approvers of this target (${[...new Set(groups)].join(", ")}) may review it.`);
    }
    const updated = await tx.accessRequest.update({
      where: { id: request.id },
      data: { reviewedAt: new Date(), reviewedById: who.id, reviewComment: comment },
    });
    await recordEvent(tx, { actor: actorOf(who), action: "break_glass.reviewed", requestId: request.id, data: { comment } });
    return updated;
  });
}

/**
 * Asks to extend an active grant. The extension is a new request under the same policy
 * (stages, limits, auto-approval); once approved its grant starts then, for its own
 * duration, and replaces the grant it extends.
 */
export async function requestExtension(who: Principal, input: { requestId: string; durationMinutes: number; justification: string }): Promise<AccessRequest> {
  const parent = await db.accessRequest.findUnique({ where: { id: input.requestId } });
  if (!parent) throw notFound("Request");
  if (parent.requesterId !== who.id) throw forbidden("Only the requester can ask to extend this grant.");
  if (parent.status !== "active") throw conflict(`This request is ${parent.status}; only an active grant can be extended.`);
  if (!workflowOf(parent.workflowId).lasting) throw conflict("This workflow grants nothing that lasts, so there is nothing to extend.");
  const open = await db.accessRequest.findFirst({ where: { extendsRequestId: parent.id, status: "pending" }, select: { id: true } });
  if (open) throw conflict("An extension of this grant is already waiting for approval.");
  const raw = { ...(parent.input as Record<string, unknown>), durationMinutes: input.durationMinutes, justification: input.justification };
  const { input: validated, durationSeconds, rule, ticket } = await validateRequest(who, parent.workflowId, raw);
  const auto = await autoApprovalOf(rule, { who, durationSeconds, accessRole: validated.role });
  return inTransaction(async (tx) => {
    const request = await insertRequest(tx, who, parent.workflowId, validated, durationSeconds, rule, ticket, {
      extendsRequestId: parent.id,
      ...(auto.auto ? { autoApprovedBy: auto.auto.name } : {}),
    });
    await recordEvent(tx, {
      actor: actorOf(who),
      action: "grant.extension_requested",
      requestId: parent.id,
      data: { extensionId: request.id, durationSeconds: durationSeconds ?? 0 },
    });
    return awaitApprovalOrAutoApprove(tx, request, who, auto);
  });
}
