import type { AccessRequest } from "@prisma/client";
import { db, type Tx } from "../db";
import { notFound } from "../errors";
import { QUEUES, queueInTransaction, type RequestJob } from "../jobs/queue";
import { policy } from "../policy/current";
import type { ApprovalState, DecisionSnapshot, Parties, StageSnapshot } from "../policy/evaluate";
import { entitlementRefusal } from "../identity/entitlements";
import { getWorkflow } from "../workflows/registry";
import type { WorkflowModule } from "../workflows/types";
import { notificationsOn } from "../notifications/outbox";

/**
 * What every operation on a request shares: the transaction that commits a change with its
 * audit events and the jobs that follow from the state it leaves (changeRequest), the
 * workflow lookup, the approval state, and the directory check made under the request's
 * row lock.
 */

export const TX = { maxWait: 15_000, timeout: 30_000 } as const;

export const REQUEST_ONLY = "This service identity is marked request-only: it can never approve, reject or review.";

export function workflowOf(id: string): WorkflowModule {
  const workflow = getWorkflow(id);
  if (!workflow) throw notFound(`Workflow "${id}"`);
  return workflow;
}

/** What must happen later for a request in the state it is left in: its expiry, its pending timeout, its execution or clean-up, its notifications. */
export function followUps(request: AccessRequest): RequestJob[] {
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
export async function changeRequest<R extends AccessRequest | null>(work: (tx: Tx) => Promise<R>): Promise<R> {
  return db.$transaction(async (tx) => {
    const request = await work(tx);
    if (request) await queueInTransaction(tx, followUps(request));
    return request;
  }, TX);
}

export function approvalStateOf(
  request: Pick<AccessRequest, "requesterId" | "stages" | "currentStage">,
  decisions: Pick<DecisionSnapshot, "approverId" | "stage" | "approverGroups" | "decision">[],
  parties: Parties,
): ApprovalState {
  return { requesterId: request.requesterId, stages: request.stages as unknown as StageSnapshot[], currentStage: request.currentStage, decisions, parties };
}

/**
 * Why the requester may no longer have what a request grants, read under the request's row
 * lock (the caller holds it) with the requester's row shared, so a directory change either
 * committed before (and is seen here) or waits and then finds the grant active and revokes it.
 */
export async function directoryRefusal(tx: Tx, request: AccessRequest): Promise<string | null> {
  await tx.$queryRaw`SELECT id FROM "User" WHERE id = ${request.requesterId} FOR SHARE`;
  const holder = await tx.user.findUniqueOrThrow({ where: { id: request.requesterId }, select: { id: true, email: true, groups: true, active: true } });
  const refusal = entitlementRefusal(policy(), holder, request);
  return refusal ? `directory: ${refusal}` : null;
}
