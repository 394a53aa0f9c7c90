import type { AccessRequest, Decision, Prisma, User } from "@prisma/client";
import { recordEvent, rememberRequest, SYSTEM, type Actor } from "../audit/record";
import { sealSecret, unsealSecret, unsealToken } from "../credentials/keys";
import { db, type Tx } from "../db";
import { conflict, forbidden, invalid, notFound } from "../errors";
import { QUEUES, queueInTransaction, type RequestJob } from "../jobs/queue";
import { policy } from "../policy/current";
import { approvalRefusal, breakGlassRefusal, evaluateRequest, sameParty, stageSatisfied, stagesOf, type ApprovalState, type DecisionSnapshot, type Parties, type Principal, type StageSnapshot } from "../policy/evaluate";
import { partiesOf } from "../identity/parties";
import { unavailability, unavailableMessage } from "../workflows/availability";
import { ownEntry } from "../text";
import { entitlementRefusal } from "../identity/entitlements";
import { describeFields } from "../workflows/fields";
import { checkIntegrationOptions } from "../workflows/option-sources";
import { getWorkflow } from "../workflows/registry";
import type { z } from "zod";
import { ExecutionFailure, type WorkflowInput, type WorkflowModule } from "../workflows/types";
import { enqueueNotifications, notificationsOn } from "../notifications/outbox";
import { enqueueSlack } from "../integrations/slack/outbox";
import { checkTicket, type TicketRef } from "../integrations/tickets/check";
import { shiftRecord } from "../integrations/oncall/lookup";
import { autoApprovalOf, onCallApprover, type AutoApprovalOutcome } from "./on-call";
import { lockRequest, Moves, transition } from "./state-machine";
import { approvalLatency, revocationLatency } from "../observability/metrics";

/**
 * The approval engine: every change to a request goes through here, in one transaction
 * with its audit events. Callers (server actions, API routes, the worker) authenticate;
 * the engine authorizes against the policy and the request itself.
 */

const TX = { maxWait: 15_000, timeout: 30_000 } as const;

const REQUEST_ONLY = "This service identity is marked request-only: it can never approve, reject or review.";

export function actorOf(who: Principal): Actor {
  if (who.via) return { type: who.via.kind, id: who.id, email: who.email, tokenId: who.via.tokenId };
  return { type: "human", id: who.id, email: who.email };
}

function workflowOf(id: string): WorkflowModule {
  const workflow = getWorkflow(id);
  if (!workflow) throw notFound(`Workflow "${id}"`);
  return workflow;
}

function fieldErrorsOf(issues: readonly { path: PropertyKey[]; message: string }[]): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const issue of issues) {
    const key = issue.path.length ? String(issue.path[0]) : "form";
    errors[key] ??= issue.path.length ? issue.message : `${issue.message}`;
  }
  return errors;
}

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
  await checkIntegrationOptions(describeFields(workflow.inputSchema as unknown as z.ZodObject), input as unknown as Record<string, unknown>, who);
  const ticket = await checkTicket(target!, input.justification);
  if (!ticket.ok) throw ticket.code === "unavailable" ? conflict(ticket.message) : invalid(ticket.message, { justification: ticket.message });
  return { input, durationSeconds, rule: verdict.rule, ticket: ticket.ticket };
}

type RequestRule = Awaited<ReturnType<typeof validateRequest>>["rule"];

async function insertRequest(tx: Tx, who: Principal, workflowId: string, input: WorkflowInput, durationSeconds: number | undefined, rule: RequestRule, ticket: TicketRef | null, extra: Partial<Prisma.AccessRequestUncheckedCreateInput> = {}) {
  const stages = stagesOf(rule);
  const pendingTimeout = rule.pendingTimeout ?? policy().defaults.pendingTimeout;
  const now = new Date();
  const request = await tx.accessRequest.create({
    data: {
      createdAt: now,
      workflowId,
      targetId: input.targetId,
      requesterId: who.id,
      status: "pending",
      input: { ...input },
      justification: input.justification,
      durationSeconds: durationSeconds ?? 0,
      stages: stages as unknown as Prisma.InputJsonArray,
      currentStage: 0,
      currentStageGroups: stages[0]!.groups,
      pendingExpiresAt: new Date(now.getTime() + pendingTimeout * 1000),
      ticketKey: ticket?.key ?? null,
      ticketUrl: ticket?.url ?? null,
      ...extra,
    },
  });
  rememberRequest(request);
  await recordEvent(tx, {
    actor: actorOf(who),
    action: "request.created",
    requestId: request.id,
    toStatus: "pending",
    data: { workflowId, targetId: input.targetId, role: input.role ?? null, durationSeconds, justification: input.justification, stages: stages.map((st) => st.name), ...(ticket ? { ticket: ticket.key, ticketUrl: ticket.url } : {}) },
  });
  return request;
}

/**
 * Records a request. When an auto-approval rule of the policy matches, it is approved and
 * carried out at once, with the rule named in the audit trail; otherwise it waits for its
 * first approval stage.
 */
/** Work a caller adds to the transaction that makes a request (the API's Idempotency-Key claim), so both commit or neither. */
export interface CreateHooks {
  before?: (tx: Tx) => Promise<void>;
  after?: (tx: Tx, request: AccessRequest) => Promise<void>;
}

export async function createRequest(who: Principal, workflowId: string, raw: unknown, hooks: CreateHooks = {}): Promise<AccessRequest> {
  const { input, durationSeconds, rule, ticket } = await validateRequest(who, workflowId, raw);
  const auto = await autoApprovalOf(rule, { who, durationSeconds, accessRole: input.role });
  return changeRequest(async (tx) => {
    await hooks.before?.(tx);
    const request = await insertRequest(tx, who, workflowId, input, durationSeconds, rule, ticket, auto.auto ? { autoApprovedBy: auto.auto.name } : {});
    const made = await awaitApprovalOrAutoApprove(tx, request, who, auto);
    await hooks.after?.(tx, made);
    return made;
  });
}

/** A new request either waits for its first stage (approvers are told) or, when a rule matches, is approved by it and carried out. */
async function awaitApprovalOrAutoApprove(tx: Tx, request: AccessRequest, who: Principal, { auto, shift, unknown }: AutoApprovalOutcome): Promise<AccessRequest> {
  if (!auto) {
    // An on-call rule whose service did not answer does not apply; the trail says why the request waits for a person.
    for (const u of unknown) await recordEvent(tx, { actor: SYSTEM, action: "request.on_call_unknown", requestId: request.id, data: { provider: u.provider, schedule: u.schedule, reason: u.reason } });
    await enqueueNotifications(tx, "pending", request, who.email);
    return request;
  }
  // Inserted in this transaction, so no one else can see the row yet.
  const moves = new Moves(request.id, "pending");
  await moves.to(tx, { to: "approved", actor: SYSTEM, action: "request.auto_approved", data: { rule: auto.name, ...(shift ? { onCall: shiftRecord(shift) } : {}) }, patch: { decidedAt: new Date() } });
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
  return changeRequest(async (tx) => {
    const request = await insertRequest(tx, who, workflowId, input, durationSeconds, rule, ticket, { breakGlass: true, breakGlassReason: why });
    const moves = new Moves(request.id, "pending");
    await moves.to(tx, { to: "approved", actor: actorOf(who), action: "request.break_glass", data: { reason: why }, patch: { decidedAt: new Date() } });
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
  return db.$transaction(async (tx) => {
    await lockRequest(tx, input.requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: input.requestId } });
    if (!request.breakGlass) throw conflict("This is not a break-glass request.");
    if (request.reviewedAt) throw conflict("This break-glass grant was already reviewed.");
    if (request.requesterId === who.id) throw forbidden("You cannot review your own break-glass grant.");
    if (sameParty(await partiesOf(tx, [request.requesterId, who.id]), request.requesterId, who.id)) {
      throw forbidden("You cannot review this break-glass grant: a service identity and its owners count as one party, and the requester is in yours.");
    }
    const groups = (request.stages as unknown as StageSnapshot[]).flatMap((st) => st.groups);
    if (!who.roles.includes("approver") || !groups.some((g) => who.groups.includes(g))) {
      throw forbidden(`Only approvers of this target (${[...new Set(groups)].join(", ")}) may review it.`);
    }
    const updated = await tx.accessRequest.update({ where: { id: request.id }, data: { reviewedAt: new Date(), reviewedById: who.id, reviewComment: comment } });
    await recordEvent(tx, { actor: actorOf(who), action: "break_glass.reviewed", requestId: request.id, data: { comment } });
    return updated;
  }, TX);
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
  return changeRequest(async (tx) => {
    const request = await insertRequest(tx, who, parent.workflowId, validated, durationSeconds, rule, ticket, { extendsRequestId: parent.id, ...(auto.auto ? { autoApprovedBy: auto.auto.name } : {}) });
    await recordEvent(tx, { actor: actorOf(who), action: "grant.extension_requested", requestId: parent.id, data: { extensionId: request.id, durationSeconds: durationSeconds ?? 0 } });
    return awaitApprovalOrAutoApprove(tx, request, who, auto);
  });
}

/** What must happen later for a request in the state it is left in: its expiry, its pending timeout, its execution or clean-up, its notifications. */
function followUps(request: AccessRequest): RequestJob[] {
  const jobs: RequestJob[] = [];
  const job = (queue: string, at: Date) => jobs.push({ queue, requestId: request.id, at });
  const now = new Date();
  if (request.status === "active" && request.expiresAt) {
    job(QUEUES.expireGrant, request.expiresAt);
    const notice = policy().defaults.expiringNotice * 1000;
    if (request.expiresAt.getTime() - now.getTime() > notice) job(QUEUES.notifyExpiring, new Date(request.expiresAt.getTime() - notice));
  }
  if (request.status === "executing") job(QUEUES.execute, now);
  if (request.undoPending) job(QUEUES.undo, now);
  if (notificationsOn()) job(QUEUES.notifyFlush, now);
  if (request.status === "pending" && request.pendingExpiresAt) job(QUEUES.expirePending, request.pendingExpiresAt);
  return jobs;
}

/**
 * Runs a change to a request in one transaction with its audit events and the jobs that
 * follow from the state it leaves the request in (followUps), so none is lost to a crash
 * between the commit and the scheduling. `work` returns the request as it leaves it, or
 * null when it changed nothing.
 */
async function changeRequest<R extends AccessRequest | null>(work: (tx: Tx) => Promise<R>): Promise<R> {
  return db.$transaction(async (tx) => {
    const request = await work(tx);
    if (request) await queueInTransaction(tx, followUps(request));
    return request;
  }, TX);
}

export interface DecisionInput {
  requestId: string;
  decision: Decision;
  comment: string;
}

/** Where a decision was made, when not in the portal or the API: recorded with each event it causes. */
export interface DecisionChannel {
  via: "slack";
  slackUserId: string;
  slackTeamId: string;
}

/**
 * Records an approval or a rejection. The request row is locked first, so of any number
 * of approvers acting at once exactly one completes the approval and executes it; the
 * others find it no longer pending.
 */
export async function decide(person: Principal, input: DecisionInput, channel?: DecisionChannel): Promise<AccessRequest> {
  const comment = input.comment.trim();
  if (input.decision === "reject" && comment.length === 0) {
    throw invalid("Say why you reject this request.", { comment: "Say why you reject this request." });
  }
  if (person.requestOnly) throw forbidden(REQUEST_ONLY);
  // Asked before the transaction (no outside call under a row lock); a stage that moved on meanwhile lists other groups, so a stale answer empowers no one.
  const pending = await db.accessRequest.findUnique({ where: { id: input.requestId }, select: { stages: true, currentStage: true, status: true } });
  const onCall = pending?.status === "pending" ? await onCallApprover(person, (pending.stages as unknown as StageSnapshot[])[pending.currentStage]) : { who: person, audit: {} };
  const who = onCall.who;
  const unknownNote = "unknown" in onCall && onCall.unknown ? ` (Whether you are on call could not be checked: ${onCall.unknown}.)` : "";
  let noLongerEntitled: string | null = null;
  const decided = await changeRequest(async (tx) => {
    const status = await lockRequest(tx, input.requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: input.requestId }, include: { requester: true, decisions: true } });
    rememberRequest(request);
    const parties = await partiesOf(tx, [request.requesterId, who.id, ...request.decisions.map((d) => d.approverId)]);
    const state = approvalStateOf(request, request.decisions, parties);
    if (sameParty(parties, request.requesterId, who.id) || !who.roles.includes("approver")) throw forbidden(approvalRefusal(state, who)!);
    if (status !== "pending") throw conflict(`This request is already ${status}; there is nothing left to decide.`);
    const refusal = approvalRefusal(state, who);
    if (refusal) throw refusal.startsWith("You have already") ? conflict(refusal) : forbidden(`${refusal}${unknownNote}`);
    if (input.decision === "approve") {
      // The requester may have been deactivated or demoted while the request waited (a directory change racing this approval): it is cancelled, not approved.
      noLongerEntitled = await directoryRefusal(tx, request);
      if (noLongerEntitled) {
        const cancelled = await transition(tx, { requestId: request.id, to: "cancelled", actor: SYSTEM, action: "request.cancelled", patch: { endedAt: new Date() }, data: { reason: noLongerEntitled, approver: who.email }, lockedFrom: "pending" });
        return cancelled.request!;
      }
    }
    const stageIndex = request.currentStage;
    const stage = state.stages[stageIndex]!;
    await tx.approval.create({ data: { requestId: request.id, approverId: who.id, stage: stageIndex, approverGroups: who.groups, decision: input.decision, comment } });
    const actor = actorOf(who);
    const via = channel ? { ...channel } : {};
    if (input.decision === "reject") {
      await transition(tx, { requestId: request.id, to: "rejected", actor, action: "request.rejected", data: { comment, stage: stage.name, ...via, ...onCall.audit }, patch: { decidedAt: new Date(), endedAt: new Date() } });
      const rejected = await tx.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
      await enqueueNotifications(tx, "rejected", rejected, request.requester.email);
      return rejected;
    }
    const approvals = [...state.decisions, { approverId: who.id, stage: stageIndex, approverGroups: who.groups, decision: "approve" as const }].filter((d) => d.stage === stageIndex && d.decision === "approve");
    if (!stageSatisfied(stage, approvals, parties, request.requesterId)) {
      await recordEvent(tx, { actor, action: "request.approval_recorded", requestId: request.id, fromStatus: "pending", toStatus: "pending", data: { comment, stage: stage.name, approvals: approvals.length, required: stage.required, ...via, ...onCall.audit } });
      const recorded = await tx.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
      await enqueueSlack(tx, "progress", recorded);
      return recorded;
    }
    const next = state.stages[stageIndex + 1];
    if (next) {
      await recordEvent(tx, { actor, action: "request.stage_passed", requestId: request.id, fromStatus: "pending", toStatus: "pending", data: { comment, stage: stage.name, next: next.name, ...via, ...onCall.audit } });
      const advanced = await tx.accessRequest.update({ where: { id: request.id }, data: { currentStage: stageIndex + 1, currentStageGroups: next.groups } });
      await enqueueNotifications(tx, "pending", advanced, request.requester.email);
      return advanced;
    }
    const moves = new Moves(request.id, status);
    await moves.to(tx, { to: "approved", actor, action: "request.approved", data: { comment, stage: stage.name, ...via, ...onCall.audit }, patch: { decidedAt: new Date() } });
    const activated = await activate(tx, moves, request, request.requester, actor);
    await enqueueNotifications(tx, "approved", activated, request.requester.email);
    return activated;
  });
  // Counted once committed, by the instance that recorded the decision; a request still waiting for another stage is not decided.
  if (decided.decidedAt) approvalLatency.observe({ decision: input.decision }, Math.max(0, (decided.decidedAt.getTime() - decided.createdAt.getTime()) / 1000));
  if (noLongerEntitled) throw conflict(`The requester may no longer have this (${noLongerEntitled}), so the request was cancelled instead of approved.`);
  return decided;
}

/**
 * Why this person may not decide this request now, or null: the refusals decide() makes,
 * read without deciding, for a client that asks for more before deciding (Slack's reject modal).
 */
export async function decisionRefusal(who: Principal, requestId: string): Promise<string | null> {
  if (who.requestOnly) return REQUEST_ONLY;
  const request = await db.accessRequest.findUnique({ where: { id: requestId }, include: { decisions: true } });
  if (!request) return "This request no longer exists.";
  const parties = await partiesOf(db, [request.requesterId, who.id, ...request.decisions.map((d) => d.approverId)]);
  const state = approvalStateOf(request, request.decisions, parties);
  if (sameParty(parties, request.requesterId, who.id) || !who.roles.includes("approver")) return approvalRefusal(state, who);
  if (request.status !== "pending") return `This request is already ${request.status}; there is nothing left to decide.`;
  return approvalRefusal(state, who);
}

export function approvalStateOf(request: Pick<AccessRequest, "requesterId" | "stages" | "currentStage">, decisions: Pick<DecisionSnapshot, "approverId" | "stage" | "approverGroups" | "decision">[], parties: Parties): ApprovalState {
  return { requesterId: request.requesterId, stages: request.stages as unknown as StageSnapshot[], currentStage: request.currentStage, decisions, parties };
}

/**
 * approved → executing → active: the workflow acts, and the grant's lifetime starts now.
 * Every caller has just approved the request in this transaction, under its row lock, in
 * `moves`; all the moves are written at the end as one update.
 */
async function activate(tx: Tx, moves: Moves, request: AccessRequest, requester: User, actor: Actor): Promise<AccessRequest> {
  const workflow = workflowOf(request.workflowId);
  const target = policy().targets[request.targetId];
  if (!target) throw conflict(`Target "${request.targetId}" is no longer in the policy; the request cannot be carried out.`);
  await moves.to(tx, { to: "executing", actor: SYSTEM, action: "request.executing" });
  // Outside systems are changed by the worker after this commits (performQueued).
  if (workflow.perform) return moves.write(tx);
  const activatedAt = new Date();
  const expiresAt = new Date(activatedAt.getTime() + request.durationSeconds * 1000);
  const input = workflow.inputSchema.parse(request.input);
  let executed;
  try {
    executed = await workflow.execute({ tx, request, requester, target, input, activatedAt, expiresAt, actor });
  } catch (error) {
    if (!(error instanceof ExecutionFailure)) throw error;
    await moves.to(tx, { to: "failed", actor: SYSTEM, action: "request.failed", patch: { failureReason: error.message, endedAt: new Date() }, data: { reason: error.message } });
    return moves.write(tx);
  }
  await recordEvent(tx, { actor: SYSTEM, action: "credential.issued", requestId: request.id, data: executed.audit });
  await moves.to(tx, { to: "active", actor: SYSTEM, action: "grant.activated", patch: { activatedAt, expiresAt }, data: { expiresAt: expiresAt.toISOString() } });
  const active = await moves.write(tx);
  await replaceExtended(tx, active);
  return active;
}

/**
 * An extension that has just become active replaces the grant it extends, in the same
 * transaction: that grant is revoked, and its outside system cleaned up by its own jobs.
 * Locks are taken extension first, then the grant it extends, on every path.
 */
async function replaceExtended(tx: Tx, extension: AccessRequest): Promise<void> {
  if (!extension.extendsRequestId || (await lockRequest(tx, extension.extendsRequestId)) !== "active") return;
  const parent = await tx.accessRequest.findUniqueOrThrow({ where: { id: extension.extendsRequestId } });
  const replaced = await endGrant(tx, parent, "revoked", SYSTEM, { reason: `replaced by extension ${extension.id}` });
  await queueInTransaction(tx, followUps(replaced));
}

/** Ends an active grant whose row lock the caller holds; returns the request as it leaves it. */
async function endGrant(tx: Tx, request: AccessRequest, reason: "expired" | "revoked", actor: Actor, data: Record<string, string>): Promise<AccessRequest> {
  const at = new Date();
  const workflow = workflowOf(request.workflowId);
  await workflow.revoke({ tx, request, reason, at });
  const ended = await transition(tx, {
    requestId: request.id,
    to: reason,
    actor,
    action: reason === "expired" ? "grant.expired" : "grant.revoked",
    // The outside system is cleaned up by the worker (undoQueued), retried until done.
    patch: { endedAt: at, sealedSecret: null, undoPending: Boolean(workflow.undo) },
    data,
    lockedFrom: "active",
  });
  return ended.request!;
}

/** Expires a grant whose time is up. Idempotent: a grant no longer active, or not yet due, is left alone. */
export async function expireGrant(requestId: string, now = new Date()): Promise<"expired" | "not-due" | "not-active"> {
  let outcome: "expired" | "not-due" | "not-active" = "not-active";
  await changeRequest(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "active") return null;
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId }, include: { requester: { select: { email: true } } } });
    if (!request.expiresAt || request.expiresAt > now) {
      outcome = "not-due";
      return null;
    }
    const expired = await endGrant(tx, request, "expired", SYSTEM, { expiresAt: request.expiresAt.toISOString() });
    await enqueueNotifications(tx, "expired", expired, request.requester.email);
    outcome = "expired";
    return expired;
  });
  return outcome;
}

/**
 * Carries out an approved request that changes an outside system, from the worker.
 * A failure is retried by the queue with backoff (the request shows the last error);
 * on the final attempt, or for an ExecutionFailure, the request becomes `failed` and
 * whatever was half done is undone.
 */
export function performQueued(requestId: string, finalAttempt: boolean): Promise<"active" | "failed" | "skipped"> {
  return exclusively(`perform:${requestId}`, () => performOnce(requestId, finalAttempt));
}

/**
 * Runs work while holding a lock on a key, for work on an outside system that two workers
 * must not do at once (the same job delivered twice, a retry racing the sweep). The lock is
 * a transaction-level advisory lock held by a connection of its own while the work runs.
 */
async function exclusively<T>(key: string, work: () => Promise<T>): Promise<T> {
  return db.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${key}))`;
      return work();
    },
    { maxWait: 60_000, timeout: 10 * 60_000 },
  );
}

async function performOnce(requestId: string, finalAttempt: boolean): Promise<"active" | "failed" | "skipped"> {
  const request = await db.accessRequest.findUnique({ where: { id: requestId }, include: { requester: true } });
  if (!request || request.status !== "executing") return "skipped";
  const workflow = workflowOf(request.workflowId);
  // A one-off action already started by another delivery of this job is followed, not started again.
  if (!workflow.perform || (!workflow.lasting && request.externalRef)) return "skipped";
  const target = policy().targets[request.targetId];
  const activatedAt = new Date();
  const expiresAt = new Date(activatedAt.getTime() + request.durationSeconds * 1000);
  // A holder who lost the right since approval gets nothing opened for them.
  const stopped = await changeRequest(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "executing") return null;
    const refusal = await directoryRefusal(tx, request);
    if (!refusal) return null;
    const failed = await transition(tx, { requestId, to: "failed", actor: SYSTEM, action: "request.failed", patch: { failureReason: refusal, endedAt: new Date() }, data: { reason: refusal }, lockedFrom: "executing" });
    return failed.request!;
  });
  if (stopped) return "failed";
  let result;
  try {
    if (!target) throw new ExecutionFailure(`Target "${request.targetId}" is no longer in the policy.`);
    result = await workflow.perform({ request, requester: request.requester, target, input: workflow.inputSchema.parse(request.input), activatedAt, expiresAt });
  } catch (error) {
    const message = (error as Error).message;
    if (!finalAttempt && !(error instanceof ExecutionFailure)) {
      await db.$transaction(async (tx) => {
        await tx.accessRequest.update({ where: { id: requestId }, data: { failureReason: `Last attempt failed, retrying: ${message}` } });
        await recordEvent(tx, { actor: SYSTEM, action: "request.execution_retry", requestId, data: { error: message } });
      }, TX);
      throw error;
    }
    await changeRequest(async (tx) => {
      if ((await lockRequest(tx, requestId)) !== "executing") return null;
      const failed = await transition(tx, { requestId, to: "failed", actor: SYSTEM, action: "request.failed", patch: { failureReason: message, endedAt: new Date(), undoPending: Boolean(workflow.undo) }, data: { reason: message }, lockedFrom: "executing" });
      return failed.request!;
    });
    return "failed";
  }
  if (!workflow.lasting) {
    // A one-off action (a job run): it stays executing while the worker follows it.
    await db.$transaction(async (tx) => {
      await recordEvent(tx, { actor: SYSTEM, action: "integration.performed", requestId, data: result.audit });
      await tx.accessRequest.update({ where: { id: requestId }, data: { failureReason: null, externalRef: result.externalRef ?? null, externalState: result.externalState ?? null } });
      await queueInTransaction(tx, [{ queue: QUEUES.follow, requestId, at: new Date(Date.now() + 2000) }]);
    }, TX);
    return "active";
  }
  const active = await changeRequest(async (tx) => {
    const status = await lockRequest(tx, requestId);
    // Stopped while the outside system was being changed (a directory change): undo what was just done.
    if (status === "failed" || status === "cancelled") return undoLate(tx, requestId, workflow, result.audit);
    if (status !== "executing") return null;
    const refusal = await directoryRefusal(tx, request);
    if (refusal) {
      await recordEvent(tx, { actor: SYSTEM, action: "integration.performed", requestId, data: result.audit });
      const failed = await transition(tx, { requestId, to: "failed", actor: SYSTEM, action: "request.failed", patch: { failureReason: refusal, endedAt: new Date(), undoPending: Boolean(workflow.undo) }, data: { reason: refusal }, lockedFrom: "executing" });
      return failed.request!;
    }
    await recordEvent(tx, { actor: SYSTEM, action: "integration.performed", requestId, data: result.audit });
    const activated = await transition(tx, {
      requestId,
      to: "active",
      actor: SYSTEM,
      action: "grant.activated",
      patch: { activatedAt, expiresAt, failureReason: null, sealedSecret: result.secret ? sealSecret(result.secret, requestId) : null },
      data: { expiresAt: expiresAt.toISOString() },
      lockedFrom: "executing",
    });
    await replaceExtended(tx, activated.request!);
    return activated.request!;
  });
  return active?.status === "active" ? "active" : active ? "failed" : "skipped";
}

/** The outside change of a request that ended while it was being made is undone by its clean-up job. */
async function undoLate(tx: Tx, requestId: string, workflow: WorkflowModule, audit: Record<string, string>): Promise<AccessRequest | null> {
  if (!workflow.undo) return null;
  await recordEvent(tx, { actor: SYSTEM, action: "integration.performed", requestId, data: { ...audit, afterEnd: "true" } });
  return tx.accessRequest.update({ where: { id: requestId }, data: { undoPending: true } });
}

/**
 * Follows a one-off action until it ends: records each new state, then completes or fails
 * the request. Returns whether it ended; the worker asks again a few seconds later if not.
 */
export async function followQueued(requestId: string, now = new Date()): Promise<"ended" | "running" | "skipped"> {
  const request = await db.accessRequest.findUnique({ where: { id: requestId } });
  if (!request || request.status !== "executing" || !request.externalRef) return "skipped";
  const workflow = workflowOf(request.workflowId);
  const target = policy().targets[request.targetId];
  if (!workflow.follow || !target) return "skipped";
  // The audit trail records when the current state was first seen (performed, or a change since).
  const seen = await db.auditEvent.findFirst({ where: { requestId, action: { in: ["integration.performed", "integration.state"] } }, orderBy: { id: "desc" }, select: { occurredAt: true } });
  const { state, done, failure } = await workflow.follow({ request, target, now, stateSince: seen?.occurredAt ?? request.updatedAt });
  return db.$transaction(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "executing") return "skipped" as const;
    if (state !== request.externalState) {
      await tx.accessRequest.update({ where: { id: requestId }, data: { externalState: state } });
      if (!done) await recordEvent(tx, { actor: SYSTEM, action: "integration.state", requestId, data: { state } });
    }
    if (!done) return "running" as const;
    if (failure) {
      await transition(tx, { requestId, to: "failed", actor: SYSTEM, action: "request.failed", patch: { failureReason: failure, endedAt: new Date() }, data: { reason: failure, state } });
    } else {
      await transition(tx, { requestId, to: "completed", actor: SYSTEM, action: "request.completed", patch: { endedAt: new Date() }, data: { state } });
    }
    return "ended" as const;
  }, TX);
}

/** Cleans up an outside system after a grant ended or failed. Idempotent; the queue retries it until it succeeds. */
export function undoQueued(requestId: string): Promise<"undone" | "nothing-to-do"> {
  return exclusively(`undo:${requestId}`, () => undoOnce(requestId));
}

async function undoOnce(requestId: string): Promise<"undone" | "nothing-to-do"> {
  const request = await db.accessRequest.findUnique({ where: { id: requestId } });
  if (!request?.undoPending) return "nothing-to-do";
  const workflow = workflowOf(request.workflowId);
  await workflow.undo?.({ request, target: policy().targets[request.targetId] });
  const cleared = await db.$transaction(async (tx) => {
    // Flagged again meanwhile (a worker finished opening something after the request ended): its own job undoes that.
    const cleared = await tx.accessRequest.updateMany({ where: { id: requestId, updatedAt: request.updatedAt }, data: { undoPending: false } });
    if (cleared.count) await recordEvent(tx, { actor: SYSTEM, action: "integration.undone", requestId });
    return cleared.count > 0;
  }, TX);
  if (cleared && request.endedAt) revocationLatency.observe({ workflow: request.workflowId }, Math.max(0, (Date.now() - request.endedAt.getTime()) / 1000));
  return "undone";
}

/** Tells the channels a grant expires soon, once. Returns whether anything was queued. */
export async function notifyExpiring(requestId: string): Promise<boolean> {
  return db.$transaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    if (status !== "active") return false;
    if (await tx.notificationDelivery.count({ where: { requestId, event: "expiring" } })) return false;
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId }, include: { requester: true } });
    return (await enqueueNotifications(tx, "expiring", request, request.requester.email)) > 0;
  }, TX);
}

/** Tells the Slack app about a change the policy's channels do not follow, and has the outbox flushed. */
async function slackFollowUp(tx: Tx, event: "closed" | "expired", request: AccessRequest): Promise<void> {
  if ((await enqueueSlack(tx, event, request)) > 0) await queueInTransaction(tx, [{ queue: QUEUES.notifyFlush, requestId: request.id, at: new Date() }]);
}

/** A request nobody decided on in time expires. Idempotent, like grant expiry. */
export async function expirePending(requestId: string, now = new Date()): Promise<"expired" | "not-due" | "not-pending"> {
  return db.$transaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    if (status !== "pending") return "not-pending";
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    if (!request.pendingExpiresAt || request.pendingExpiresAt > now) return "not-due";
    const timedOut = await transition(tx, { requestId, to: "expired", actor: SYSTEM, action: "request.timed_out", patch: { endedAt: now }, data: { pendingExpiresAt: request.pendingExpiresAt.toISOString() } });
    await slackFollowUp(tx, "expired", timedOut.request!);
    return "expired";
  }, TX);
}

/** Expires every active grant past its end and every request left pending too long. */
export async function sweepExpiredGrants(now = new Date()): Promise<number> {
  const grants = await db.accessRequest.findMany({ where: { status: "active", expiresAt: { lte: now } }, select: { id: true }, take: 500 });
  const pending = await db.accessRequest.findMany({ where: { status: "pending", pendingExpiresAt: { lte: now } }, select: { id: true }, take: 500 });
  let expired = 0;
  for (const { id } of grants) if ((await expireGrant(id, now)) === "expired") expired += 1;
  for (const { id } of pending) if ((await expirePending(id, now)) === "expired") expired += 1;
  // Clean-ups whose job went missing (e.g. the portal was down) are queued again.
  const undo = await db.accessRequest.findMany({ where: { undoPending: true }, select: { id: true }, take: 500 });
  await requeue(QUEUES.undo, undo);
  const following = await db.accessRequest.findMany({ where: { status: "executing", externalRef: { not: null } }, select: { id: true }, take: 500 });
  await requeue(QUEUES.follow, following);
  // Executions left behind by a worker that died mid-way (its job would wait for pg-boss to
  // expire it) are queued again; the per-request lock makes a duplicate wait, then skip.
  const stalled = await db.accessRequest.findMany({ where: { status: "executing", externalRef: null, updatedAt: { lt: new Date(now.getTime() - 60_000) } }, select: { id: true }, take: 500 });
  await requeue(QUEUES.execute, stalled);
  return expired;
}

/**
 * Queues a job for each request that has none waiting (created or waiting to retry) in that
 * queue: pg-boss's singletonKey does not deduplicate on standard queues, and a job per
 * minute per request would pile up. A job stuck as active (its worker died) does not count.
 */
async function requeue(queue: string, requests: { id: string }[]): Promise<void> {
  if (requests.length === 0) return;
  const waiting = new Set(
    (
      await db.$queryRaw<{ key: string }[]>`
        SELECT singleton_key AS key FROM pgboss.job
        WHERE name = ${queue} AND state IN ('created', 'retry') AND singleton_key = ANY(${requests.map((r) => r.id)})`
    ).map((r) => r.key),
  );
  const missing = requests.filter(({ id }) => !waiting.has(id)).map(({ id }) => ({ queue, requestId: id, at: new Date() }));
  if (missing.length) await db.$transaction((tx) => queueInTransaction(tx, missing));
}

/** Ends a grant early. The requester may revoke their own; an admin may revoke any. */
export async function revokeGrant(who: Principal, input: { requestId: string; reason: string }): Promise<AccessRequest> {
  return changeRequest(async (tx) => {
    const status = await lockRequest(tx, input.requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: input.requestId } });
    if (request.requesterId !== who.id && !who.roles.includes("admin")) {
      throw forbidden("Only the requester or an admin can revoke this grant.");
    }
    if (status === "revoked") return request;
    if (status !== "active") throw conflict(`This request is ${status}; only an active grant can be revoked.`);
    return endGrant(tx, request, "revoked", actorOf(who), { reason: input.reason.trim() || "revoked early" });
  });
}

/** The requester withdraws a request nobody has decided yet. */
export async function cancelRequest(who: Principal, requestId: string): Promise<AccessRequest> {
  return db.$transaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    if (request.requesterId !== who.id) throw forbidden("Only the requester can cancel this request.");
    if (status === "cancelled") return request;
    if (status !== "pending") throw conflict(`This request is ${status}; only a pending request can be cancelled.`);
    await transition(tx, { requestId, to: "cancelled", actor: actorOf(who), action: "request.cancelled", patch: { endedAt: new Date() } });
    const cancelled = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    await slackFollowUp(tx, "closed", cancelled);
    return cancelled;
  }, TX);
}

/**
 * Ends an active grant whose holder no longer may have it (a directory change, an
 * offboarding), through the same path as any revocation: the credential is refused at
 * commit and the outside system is cleaned up by the grant's own undo job. Returns null
 * when the grant was no longer active.
 */
export async function revokeForDirectory(requestId: string, actor: Actor, reason: string): Promise<AccessRequest | null> {
  return changeRequest(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "active") return null;
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    return endGrant(tx, request, "revoked", actor, { reason });
  });
}

/** Cancels a pending request the policy no longer allows its requester to make. Null when it was no longer pending. */
export async function cancelForDirectory(requestId: string, actor: Actor, reason: string): Promise<AccessRequest | null> {
  return changeRequest(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "pending") return null;
    const cancelled = await transition(tx, { requestId, to: "cancelled", actor, action: "request.cancelled", patch: { endedAt: new Date() }, data: { reason }, lockedFrom: "pending" });
    return cancelled.request!;
  });
}

/**
 * Stops a request that was approved but is not a grant yet (the worker may be opening its
 * route or creating its role right now) when its holder no longer may have it. It fails
 * with the directory's reason, and its clean-up job undoes whatever the worker did; a
 * worker that finishes after this undoes its own change (performOnce). Null when the
 * request was no longer being set up, or is a one-off action already started.
 */
export async function stopForDirectory(requestId: string, actor: Actor, reason: string): Promise<AccessRequest | null> {
  return changeRequest(async (tx) => {
    const status = await lockRequest(tx, requestId);
    if (status !== "approved" && status !== "executing") return null;
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    const workflow = workflowOf(request.workflowId);
    if (!workflow.lasting && request.externalRef) return null;
    const failed = await transition(tx, { requestId, to: "failed", actor, action: "request.failed", patch: { failureReason: reason, endedAt: new Date(), undoPending: Boolean(workflow.undo) }, data: { reason }, lockedFrom: status });
    return failed.request!;
  });
}

/**
 * Why the requester may no longer have what a request grants, read under the request's row
 * lock (the caller holds it) with the requester's row shared, so a directory change either
 * committed before (and is seen here) or waits and then finds the grant active and revokes it.
 */
async function directoryRefusal(tx: Tx, request: AccessRequest): Promise<string | null> {
  await tx.$queryRaw`SELECT id FROM "User" WHERE id = ${request.requesterId} FOR SHARE`;
  const holder = await tx.user.findUniqueOrThrow({ where: { id: request.requesterId }, select: { id: true, email: true, groups: true, active: true } });
  const refusal = entitlementRefusal(policy(), holder, request);
  return refusal ? `directory: ${refusal}` : null;
}

/**
 * Hands the signed credential to its owner, once. The sealed token is cleared in the same
 * statement that reads it, so two tabs racing cannot both receive it.
 */
export async function revealCredential(who: Principal, requestId: string): Promise<{ token: string; expiresAt: Date }> {
  return db.$transaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    if (request.requesterId !== who.id) throw forbidden("Only the requester can see this credential.");
    if (status !== "active") throw conflict(`This request is ${status}; there is no credential to show.`);
    const rows = await tx.$queryRaw<{ id: string; sealedToken: string; expiresAt: Date }[]>`
      WITH taken AS (
        SELECT id, "sealedToken" FROM "Credential"
        WHERE "requestId" = ${requestId} AND "sealedToken" IS NOT NULL AND "revokedAt" IS NULL
        FOR UPDATE)
      UPDATE "Credential" c SET "sealedToken" = NULL, "revealedAt" = now()
      FROM taken WHERE c.id = taken.id
      RETURNING c.id, taken."sealedToken", c."expiresAt"`;
    const row = rows[0];
    if (row) {
      await recordEvent(tx, { actor: actorOf(who), action: "credential.revealed", requestId, data: { jti: row.id } });
      return { token: unsealToken(row.sealedToken, row.id), expiresAt: row.expiresAt };
    }
    const secrets = await tx.$queryRaw<{ sealedSecret: string }[]>`
      WITH taken AS (SELECT id, "sealedSecret" FROM "AccessRequest" WHERE id = ${requestId} AND "sealedSecret" IS NOT NULL)
      UPDATE "AccessRequest" r SET "sealedSecret" = NULL, "secretRevealedAt" = now()
      FROM taken WHERE r.id = taken.id
      RETURNING taken."sealedSecret"`;
    if (!secrets[0]) throw conflict("This credential was already shown once and cannot be shown again. Revoke it and request a new one if it was lost.");
    await recordEvent(tx, { actor: actorOf(who), action: "credential.revealed", requestId, data: { kind: "integration secret" } });
    return { token: unsealSecret(secrets[0].sealedSecret, requestId), expiresAt: request.expiresAt! };
  }, TX);
}
