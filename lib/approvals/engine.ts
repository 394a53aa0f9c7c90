import type { AccessRequest, Decision, User } from "@prisma/client";
import { recordEvent, SYSTEM, type Actor } from "../audit/record";
import { unsealToken } from "../credentials/keys";
import { db, type Tx } from "../db";
import { env } from "../env";
import { conflict, forbidden, invalid, notFound } from "../errors";
import { QUEUES, sender, type ExpireGrantJob } from "../jobs/queue";
import { policy } from "../policy/current";
import { approvalRefusal, evaluateRequest, type Principal } from "../policy/evaluate";
import { getWorkflow } from "../workflows/registry";
import type { WorkflowModule } from "../workflows/types";
import { lockRequest, transition } from "./state-machine";

/**
 * The approval engine: every change to a request goes through here, in one transaction
 * with its audit events. Callers (server actions, API routes, the worker) authenticate;
 * the engine authorizes against the policy and the request itself.
 */

const TX = { maxWait: 15_000, timeout: 30_000 } as const;

export function actorOf(who: Principal): Actor {
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

export async function createRequest(who: Principal, workflowId: string, raw: unknown): Promise<AccessRequest> {
  const workflow = workflowOf(workflowId);
  const parsed = workflow.inputSchema.safeParse(raw);
  if (!parsed.success) throw invalid("Some fields need attention.", fieldErrorsOf(parsed.error.issues));
  const input = parsed.data;
  const durationSeconds = input.durationMinutes * 60;
  const verdict = evaluateRequest(policy(), { workflowId, targetId: input.targetId, who, durationSeconds, accessRole: input.role });
  if (!verdict.ok) {
    if (verdict.field) throw invalid(verdict.message, { [verdict.field]: verdict.message });
    throw forbidden(verdict.message);
  }
  return db.$transaction(async (tx) => {
    const request = await tx.accessRequest.create({
      data: {
        workflowId,
        targetId: input.targetId,
        requesterId: who.id,
        status: "pending",
        input: { ...input },
        justification: input.justification,
        durationSeconds,
        approverGroups: verdict.rule.approval.groups,
        approvalsNeeded: verdict.rule.approval.required,
      },
    });
    await recordEvent(tx, {
      actor: actorOf(who),
      action: "request.created",
      requestId: request.id,
      toStatus: "pending",
      data: { workflowId, targetId: input.targetId, role: input.role ?? null, durationSeconds, justification: input.justification },
    });
    return request;
  }, TX);
}

export interface DecisionInput {
  requestId: string;
  decision: Decision;
  comment: string;
}

/**
 * Records an approval or a rejection. The request row is locked first, so of any number
 * of approvers acting at once exactly one completes the approval and executes it; the
 * others find it no longer pending.
 */
export async function decide(who: Principal, input: DecisionInput): Promise<AccessRequest> {
  const comment = input.comment.trim();
  if (input.decision === "reject" && comment.length === 0) {
    throw invalid("Say why you reject this request.", { comment: "Say why you reject this request." });
  }
  const result = await db.$transaction(async (tx) => {
    const status = await lockRequest(tx, input.requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: input.requestId }, include: { requester: true } });
    const refusal = approvalRefusal(request, who);
    if (refusal) throw forbidden(refusal);
    if (status !== "pending") throw conflict(`This request is already ${status}; there is nothing left to decide.`);
    const previous = await tx.approval.findUnique({ where: { requestId_approverId: { requestId: request.id, approverId: who.id } } });
    if (previous) throw conflict("You have already decided on this request.");
    await tx.approval.create({ data: { requestId: request.id, approverId: who.id, decision: input.decision, comment } });
    const actor = actorOf(who);
    if (input.decision === "reject") {
      await transition(tx, { requestId: request.id, to: "rejected", actor, action: "request.rejected", data: { comment }, patch: { decidedAt: new Date(), endedAt: new Date() } });
      return tx.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
    }
    const approvals = await tx.approval.count({ where: { requestId: request.id, decision: "approve" } });
    if (approvals < request.approvalsNeeded) {
      await recordEvent(tx, {
        actor,
        action: "request.approval_recorded",
        requestId: request.id,
        fromStatus: "pending",
        toStatus: "pending",
        data: { comment, approvals, approvalsNeeded: request.approvalsNeeded },
      });
      return tx.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
    }
    await transition(tx, { requestId: request.id, to: "approved", actor, action: "request.approved", data: { comment, approvals }, patch: { decidedAt: new Date() } });
    return activate(tx, request, request.requester, actor);
  }, TX);
  if (result.status === "active" && result.expiresAt) await scheduleExpiry(result.id, result.expiresAt);
  return result;
}

/** approved → executing → active: the workflow acts, and the grant's lifetime starts now. */
async function activate(tx: Tx, request: AccessRequest, requester: User, actor: Actor): Promise<AccessRequest> {
  const workflow = workflowOf(request.workflowId);
  const target = policy().targets[request.targetId];
  if (!target) throw conflict(`Target "${request.targetId}" is no longer in the policy; the request cannot be carried out.`);
  await transition(tx, { requestId: request.id, to: "executing", actor: SYSTEM, action: "request.executing" });
  const activatedAt = new Date();
  const expiresAt = new Date(activatedAt.getTime() + request.durationSeconds * 1000);
  const input = workflow.inputSchema.parse(request.input);
  const executed = await workflow.execute({ tx, request, requester, target, input, activatedAt, expiresAt, actor });
  await recordEvent(tx, { actor: SYSTEM, action: "credential.issued", requestId: request.id, data: executed.audit });
  await transition(tx, { requestId: request.id, to: "active", actor: SYSTEM, action: "grant.activated", patch: { activatedAt, expiresAt }, data: { expiresAt: expiresAt.toISOString() } });
  return tx.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
}

/** Best effort: the every-minute sweep expires anything whose job went missing. */
async function scheduleExpiry(requestId: string, expiresAt: Date): Promise<void> {
  try {
    const boss = await sender(env().DATABASE_URL);
    const job: ExpireGrantJob = { requestId };
    await boss.send(QUEUES.expireGrant, job, { startAfter: expiresAt, singletonKey: requestId });
  } catch (error) {
    console.error(`[engine] could not schedule expiry of ${requestId}; the sweep will catch it:`, (error as Error).message);
  }
}

async function endGrant(tx: Tx, request: AccessRequest, reason: "expired" | "revoked", actor: Actor, data: Record<string, string>): Promise<void> {
  const at = new Date();
  await workflowOf(request.workflowId).revoke({ tx, request, reason, at });
  await transition(tx, {
    requestId: request.id,
    to: reason,
    actor,
    action: reason === "expired" ? "grant.expired" : "grant.revoked",
    patch: { endedAt: at },
    data,
  });
}

/** Expires a grant whose time is up. Idempotent: a grant no longer active, or not yet due, is left alone. */
export async function expireGrant(requestId: string, now = new Date()): Promise<"expired" | "not-due" | "not-active"> {
  return db.$transaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    if (status !== "active") return "not-active";
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    if (!request.expiresAt || request.expiresAt > now) return "not-due";
    await endGrant(tx, request, "expired", SYSTEM, { expiresAt: request.expiresAt.toISOString() });
    return "expired";
  }, TX);
}

/** Expires every active grant past its end. Returns how many it expired. */
export async function sweepExpiredGrants(now = new Date()): Promise<number> {
  const due = await db.accessRequest.findMany({ where: { status: "active", expiresAt: { lte: now } }, select: { id: true }, take: 500 });
  let expired = 0;
  for (const { id } of due) if ((await expireGrant(id, now)) === "expired") expired += 1;
  return expired;
}

/** Ends a grant early. The requester may revoke their own; an admin may revoke any. */
export async function revokeGrant(who: Principal, input: { requestId: string; reason: string }): Promise<AccessRequest> {
  return db.$transaction(async (tx) => {
    const status = await lockRequest(tx, input.requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: input.requestId } });
    if (request.requesterId !== who.id && !who.roles.includes("admin")) {
      throw forbidden("Only the requester or an admin can revoke this grant.");
    }
    if (status === "revoked") return request;
    if (status !== "active") throw conflict(`This request is ${status}; only an active grant can be revoked.`);
    await endGrant(tx, request, "revoked", actorOf(who), { reason: input.reason.trim() || "revoked early" });
    return tx.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
  }, TX);
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
    return tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
  }, TX);
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
    if (!row) throw conflict("This credential was already shown once and cannot be shown again. Revoke it and request a new one if it was lost.");
    await recordEvent(tx, { actor: actorOf(who), action: "credential.revealed", requestId, data: { jti: row.id } });
    return { token: unsealToken(row.sealedToken, row.id), expiresAt: row.expiresAt };
  }, TX);
}
