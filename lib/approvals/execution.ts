import type { AccessRequest, User } from "@prisma/client";
import { recordEvent, SYSTEM, type Actor } from "../audit/record";
import { sealSecret } from "../credentials/keys";
import { db, type Tx } from "../db";
import { conflict } from "../errors";
import { QUEUES, queueInTransaction } from "../jobs/queue";
import { policy } from "../policy/current";
import { ExecutionFailure, type WorkflowModule } from "../workflows/types";
import { lockRequest, Moves, queueFollowUps, transition } from "./transition";
import { revocationLatency } from "../observability/metrics";
import { inTransaction, directoryRefusal, workflowOf } from "./lifecycle";
import { replaceExtended } from "./grants";

/**
 * Carrying out an approved request: inline in the approving transaction (activate), or by
 * the worker for workflows that change an outside system (perform, follow, undo), each
 * under a per-request advisory lock so two workers never act on the same request at once.
 */

/**
 * approved → executing → active: the workflow acts, and the grant's lifetime starts now.
 * Every caller has just approved the request in this transaction, under its row lock, in
 * `moves`; all the moves are written at the end as one update.
 */
export async function activate(tx: Tx, moves: Moves, request: AccessRequest, requester: User, actor: Actor): Promise<AccessRequest> {
  const workflow = workflowOf(request.workflowId);
  const target = policy().targets[request.targetId];
  if (!target) throw conflict(`Target "${request.targetId}" is no longer in the policy; the request cannot be carried out.`);
  await moves.to(tx, "executing", { actor: SYSTEM, action: "request.executing" });
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
    await moves.to(tx, "failed", {
      actor: SYSTEM,
      action: "request.failed",
      patch: { failureReason: error.message, endedAt: new Date() },
      data: { reason: error.message },
    });
    return moves.write(tx);
  }
  await recordEvent(tx, { actor: SYSTEM, action: "credential.issued", requestId: request.id, data: executed.audit });
  await moves.to(tx, "active", {
    actor: SYSTEM,
    action: "grant.activated",
    patch: { activatedAt, expiresAt },
    data: { expiresAt: expiresAt.toISOString() },
  });
  const active = await moves.write(tx);
  await replaceExtended(tx, active);
  return active;
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
  const stopped = await inTransaction(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "executing") return null;
    const refusal = await directoryRefusal(tx, request);
    if (!refusal) return null;
    // Nothing was done outside yet, so nothing waits to be undone.
    return failExecution(tx, requestId, refusal, false);
  });
  if (stopped) return "failed";
  let result;
  try {
    if (!target) throw new ExecutionFailure(`Target "${request.targetId}" is no longer in the policy.`);
    result = await workflow.perform({
      request,
      requester: request.requester,
      target,
      input: workflow.inputSchema.parse(request.input),
      activatedAt,
      expiresAt,
    });
  } catch (error) {
    const message = (error as Error).message;
    if (!finalAttempt && !(error instanceof ExecutionFailure)) {
      await inTransaction(async (tx) => {
        await tx.accessRequest.update({ where: { id: requestId }, data: { failureReason: `Last attempt failed, retrying: ${message}` } });
        await recordEvent(tx, { actor: SYSTEM, action: "request.execution_retry", requestId, data: { error: message } });
      });
      throw error;
    }
    await inTransaction(async (tx) => {
      if ((await lockRequest(tx, requestId)) === "executing") await failExecution(tx, requestId, message, Boolean(workflow.undo));
    });
    return "failed";
  }
  if (!workflow.lasting) {
    // A one-off action (a job run): it stays executing while the worker follows it.
    await inTransaction(async (tx) => {
      await recordEvent(tx, { actor: SYSTEM, action: "integration.performed", requestId, data: result.audit });
      await tx.accessRequest.update({
        where: { id: requestId },
        data: { failureReason: null, externalRef: result.externalRef ?? null, externalState: result.externalState ?? null },
      });
      await queueInTransaction(tx, [{ queue: QUEUES.follow, requestId, at: new Date(Date.now() + 2000) }]);
    });
    return "active";
  }
  const active = await inTransaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    // Stopped while the outside system was being changed (a directory change): undo what was just done.
    if (status === "failed" || status === "cancelled") return undoLate(tx, requestId, workflow, result.audit);
    if (status !== "executing") return null;
    await recordEvent(tx, { actor: SYSTEM, action: "integration.performed", requestId, data: result.audit });
    const refusal = await directoryRefusal(tx, request);
    if (refusal) return failExecution(tx, requestId, refusal, Boolean(workflow.undo));
    const activated = await transition(tx, { id: requestId, status }, "active", {
      actor: SYSTEM,
      action: "grant.activated",
      patch: { activatedAt, expiresAt, failureReason: null, sealedSecret: result.secret ? sealSecret(result.secret, requestId) : null },
      data: { expiresAt: expiresAt.toISOString() },
    });
    await replaceExtended(tx, activated);
    return activated;
  });
  return active?.status === "active" ? "active" : active ? "failed" : "skipped";
}

/** The outside change of a request that ended while it was being made is undone by its clean-up job. */
async function undoLate(tx: Tx, requestId: string, workflow: WorkflowModule, audit: Record<string, string>): Promise<AccessRequest | null> {
  if (!workflow.undo) return null;
  await recordEvent(tx, { actor: SYSTEM, action: "integration.performed", requestId, data: { ...audit, afterEnd: "true" } });
  const flagged = await tx.accessRequest.update({ where: { id: requestId }, data: { undoPending: true } });
  await queueFollowUps(tx, flagged);
  return flagged;
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
  const seen = await db.auditEvent.findFirst({
    where: { requestId, action: { in: ["integration.performed", "integration.state"] } },
    orderBy: { id: "desc" },
    select: { occurredAt: true },
  });
  const { state, done, failure } = await workflow.follow({ request, target, now, stateSince: seen?.occurredAt ?? request.updatedAt });
  return inTransaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    if (status !== "executing") return "skipped" as const;
    if (state !== request.externalState) {
      await tx.accessRequest.update({ where: { id: requestId }, data: { externalState: state } });
      if (!done) await recordEvent(tx, { actor: SYSTEM, action: "integration.state", requestId, data: { state } });
    }
    if (!done) return "running" as const;
    if (failure) {
      await transition(tx, { id: requestId, status }, "failed", {
        actor: SYSTEM,
        action: "request.failed",
        patch: { failureReason: failure, endedAt: new Date() },
        data: { reason: failure, state },
      });
    } else {
      await transition(tx, { id: requestId, status }, "completed", {
        actor: SYSTEM,
        action: "request.completed",
        patch: { endedAt: new Date() },
        data: { state },
      });
    }
    return "ended" as const;
  });
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
  const cleared = await inTransaction(async (tx) => {
    // Flagged again meanwhile (a worker finished opening something after the request ended): its own job undoes that.
    const cleared = await tx.accessRequest.updateMany({ where: { id: requestId, updatedAt: request.updatedAt }, data: { undoPending: false } });
    if (cleared.count) await recordEvent(tx, { actor: SYSTEM, action: "integration.undone", requestId });
    return cleared.count > 0;
  });
  if (cleared && request.endedAt) revocationLatency.observe({ workflow: request.workflowId }, Math.max(0, (Date.now() - request.endedAt.getTime()) / 1000));
  return "undone";
}

/** An execution that ends in failure: the request fails with the reason, and what was done is undone when the workflow can undo. */
function failExecution(tx: Tx, requestId: string, reason: string, undoPending: boolean): Promise<AccessRequest> {
  return transition(tx, { id: requestId, status: "executing" }, "failed", {
    actor: SYSTEM,
    action: "request.failed",
    patch: { failureReason: reason, endedAt: new Date(), undoPending },
    data: { reason },
  });
}
