import type { AccessRequest } from "@prisma/client";
import { actorOf, SYSTEM, type Actor } from "../audit/record";
import { db, type Tx } from "../db";
import { conflict, forbidden } from "../errors";
import { QUEUES, queueInTransaction } from "../jobs/queue";
import type { Principal } from "../policy/evaluate";
import { enqueueNotifications } from "../notifications/outbox";
import { enqueueSlack } from "../integrations/slack/outbox";
import { lockRequest, transition } from "./transition";
import { inTransaction, workflowOf } from "./lifecycle";

/**
 * How requests and grants end: expiry (of a grant, or of a request nobody decided), early
 * revocation, cancellation, and the stops a directory change causes, plus the sweep that
 * queues again whatever work went missing.
 */

/**
 * An extension that has just become active replaces the grant it extends, in the same
 * transaction: that grant is revoked, and its outside system cleaned up by its own jobs.
 * Locks are taken extension first, then the grant it extends, on every path.
 */
export async function replaceExtended(tx: Tx, extension: AccessRequest): Promise<void> {
  if (!extension.extendsRequestId || (await lockRequest(tx, extension.extendsRequestId)) !== "active") return;
  const parent = await tx.accessRequest.findUniqueOrThrow({ where: { id: extension.extendsRequestId } });
  await endGrant(tx, parent, "revoked", SYSTEM, { reason: `replaced by extension ${extension.id}` });
}

/** Ends an active grant whose row lock the caller holds; returns the request as it leaves it. */
async function endGrant(tx: Tx, request: AccessRequest, reason: "expired" | "revoked", actor: Actor, data: Record<string, string>): Promise<AccessRequest> {
  const at = new Date();
  const workflow = workflowOf(request.workflowId);
  await workflow.revoke({ tx, request, reason, at });
  return transition(tx, request, reason, {
    actor,
    action: reason === "expired" ? "grant.expired" : "grant.revoked",
    // The outside system is cleaned up by the worker (undoQueued), retried until done.
    patch: { endedAt: at, sealedSecret: null, undoPending: Boolean(workflow.undo) },
    data,
  });
}

/** Expires a grant whose time is up. Idempotent: a grant no longer active, or not yet due, is left alone. */
export async function expireGrant(requestId: string, now = new Date()): Promise<"expired" | "not-due" | "not-active"> {
  let outcome: "expired" | "not-due" | "not-active" = "not-active";
  await inTransaction(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "active") return;
    const { requester, ...request } = await tx.accessRequest.findUniqueOrThrow({
      where: { id: requestId },
      include: { requester: { select: { email: true } } },
    });
    if (!request.expiresAt || request.expiresAt > now) {
      outcome = "not-due";
      return;
    }
    const expired = await endGrant(tx, request, "expired", SYSTEM, { expiresAt: request.expiresAt.toISOString() });
    await enqueueNotifications(tx, "expired", expired, requester.email);
    outcome = "expired";
  });
  return outcome;
}

/** Tells the channels a grant expires soon, once. Returns whether anything was queued. */
export async function notifyExpiring(requestId: string): Promise<boolean> {
  return inTransaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    if (status !== "active") return false;
    if (await tx.notificationDelivery.count({ where: { requestId, event: "expiring" } })) return false;
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId }, include: { requester: true } });
    return (await enqueueNotifications(tx, "expiring", request, request.requester.email)) > 0;
  });
}

/** Tells the Slack app about a change the policy's channels do not follow, and has the outbox flushed. */
async function slackFollowUp(tx: Tx, event: "closed" | "expired", request: AccessRequest): Promise<void> {
  if ((await enqueueSlack(tx, event, request)) > 0) await queueInTransaction(tx, [{ queue: QUEUES.notifyFlush, requestId: request.id, at: new Date() }]);
}

/** A request nobody decided on in time expires. Idempotent, like grant expiry. */
export async function expirePending(requestId: string, now = new Date()): Promise<"expired" | "not-due" | "not-pending"> {
  return inTransaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    if (status !== "pending") return "not-pending";
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    if (!request.pendingExpiresAt || request.pendingExpiresAt > now) return "not-due";
    const timedOut = await transition(tx, request, "expired", {
      actor: SYSTEM,
      action: "request.timed_out",
      patch: { endedAt: now },
      data: { pendingExpiresAt: request.pendingExpiresAt.toISOString() },
    });
    await slackFollowUp(tx, "expired", timedOut);
    return "expired";
  });
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
  const stalled = await db.accessRequest.findMany({
    where: { status: "executing", externalRef: null, updatedAt: { lt: new Date(now.getTime() - 60_000) } },
    select: { id: true },
    take: 500,
  });
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
  return inTransaction(async (tx) => {
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
  return inTransaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    if (request.requesterId !== who.id) throw forbidden("Only the requester can cancel this request.");
    if (status === "cancelled") return request;
    if (status !== "pending") throw conflict(`This request is ${status}; only a pending request can be cancelled.`);
    const cancelled = await transition(tx, request, "cancelled", { actor: actorOf(who), action: "request.cancelled", patch: { endedAt: new Date() } });
    await slackFollowUp(tx, "closed", cancelled);
    return cancelled;
  });
}

/**
 * Ends an active grant whose holder no longer may have it (a directory change, an
 * offboarding), through the same path as any revocation: the credential is refused at
 * commit and the outside system is cleaned up by the grant's own undo job. Returns null
 * when the grant was no longer active.
 */
export async function revokeForDirectory(requestId: string, actor: Actor, reason: string): Promise<AccessRequest | null> {
  return inTransaction(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "active") return null;
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    return endGrant(tx, request, "revoked", actor, { reason });
  });
}

/** Cancels a pending request the policy no longer allows its requester to make. Null when it was no longer pending. */
export async function cancelForDirectory(requestId: string, actor: Actor, reason: string): Promise<AccessRequest | null> {
  return inTransaction(async (tx) => {
    if ((await lockRequest(tx, requestId)) !== "pending") return null;
    return transition(tx, { id: requestId, status: "pending" }, "cancelled", {
      actor,
      action: "request.cancelled",
      patch: { endedAt: new Date() },
      data: { reason },
    });
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
  return inTransaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    if (status !== "approved" && status !== "executing") return null;
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    const workflow = workflowOf(request.workflowId);
    if (!workflow.lasting && request.externalRef) return null;
    return transition(tx, request, "failed", {
      actor,
      action: "request.failed",
      patch: { failureReason: reason, endedAt: new Date(), undoPending: Boolean(workflow.undo) },
      data: { reason },
    });
  });
}
