import "server-only";
import type { Prisma, RequestStatus } from "@prisma/client";
import { db } from "../db";
import { notFound } from "../errors";
import { approvalRefusal, type Principal } from "../policy/evaluate";
import { policy } from "../policy/current";

/** Read models for the pages and routes. Each checks who may see what. */

const requestListSelect = {
  id: true,
  workflowId: true,
  targetId: true,
  status: true,
  input: true,
  justification: true,
  durationSeconds: true,
  createdAt: true,
  activatedAt: true,
  expiresAt: true,
  requester: { select: { email: true, name: true } },
} satisfies Prisma.AccessRequestSelect;

export type RequestListItem = Prisma.AccessRequestGetPayload<{ select: typeof requestListSelect }> & { targetTitle: string };

function withTitles<T extends { targetId: string }>(rows: T[]): (T & { targetTitle: string })[] {
  const targets = policy().targets;
  return rows.map((r) => ({ ...r, targetTitle: targets[r.targetId]?.title ?? r.targetId }));
}

export async function listMyRequests(who: Principal): Promise<RequestListItem[]> {
  const rows = await db.accessRequest.findMany({ where: { requesterId: who.id }, orderBy: { createdAt: "desc" }, take: 100, select: requestListSelect });
  return withTitles(rows);
}

/** Pending requests this person could approve and has not decided on yet. */
export async function inboxFor(who: Principal): Promise<RequestListItem[]> {
  if (!who.roles.includes("approver")) return [];
  const rows = await db.accessRequest.findMany({
    where: {
      status: "pending",
      requesterId: { not: who.id },
      approverGroups: { hasSome: who.groups },
      decisions: { none: { approverId: who.id } },
    },
    orderBy: { createdAt: "asc" },
    take: 200,
    select: requestListSelect,
  });
  return withTitles(rows);
}

export async function getRequestView(who: Principal, id: string) {
  const request = await db.accessRequest.findUnique({
    where: { id },
    include: {
      requester: { select: { id: true, email: true, name: true } },
      decisions: { include: { approver: { select: { email: true, name: true } } }, orderBy: { createdAt: "asc" } },
      credential: { select: { id: true, kid: true, issuedAt: true, expiresAt: true, revealedAt: true, revokedAt: true, sealedToken: true } },
    },
  });
  if (!request) throw notFound("Request");
  const refusal = approvalRefusal(request, who);
  const mayView =
    request.requesterId === who.id || refusal === null || who.roles.includes("auditor") || who.roles.includes("admin");
  if (!mayView) throw notFound("Request");
  const timeline = await db.auditEvent.findMany({ where: { requestId: id }, orderBy: { id: "asc" } });
  const { credential, ...rest } = request;
  return {
    ...rest,
    targetTitle: policy().targets[request.targetId]?.title ?? request.targetId,
    credential: credential && { ...credential, sealedToken: undefined, revealable: credential.sealedToken !== null && credential.revokedAt === null },
    timeline: timeline.map((e) => ({ ...e, id: e.id.toString() })),
    viewer: {
      isRequester: request.requesterId === who.id,
      canDecide: request.status === "pending" && refusal === null && !request.decisions.some((d) => d.approverId === who.id),
      decisionRefusal: refusal,
      canRevoke: request.status === "active" && (request.requesterId === who.id || who.roles.includes("admin")),
      canCancel: request.status === "pending" && request.requesterId === who.id,
    },
  };
}

export type RequestView = Awaited<ReturnType<typeof getRequestView>>;

export interface HistoryFilters {
  actor?: string;
  status?: RequestStatus;
  action?: string;
  from?: Date;
  to?: Date;
  /** Events older than this id (keyset pagination: stable while new events arrive). */
  before?: bigint;
  pageSize?: number;
}

export async function historyPage(filters: HistoryFilters) {
  const pageSize = Math.min(filters.pageSize ?? 50, 200);
  const where: Prisma.AuditEventWhereInput = {
    ...(filters.actor ? { actorEmail: { contains: filters.actor.toLowerCase() } } : {}),
    ...(filters.status ? { toStatus: filters.status } : {}),
    ...(filters.action ? { action: filters.action } : {}),
    ...(filters.from || filters.to ? { occurredAt: { ...(filters.from ? { gte: filters.from } : {}), ...(filters.to ? { lt: filters.to } : {}) } } : {}),
    ...(filters.before ? { id: { lt: filters.before } } : {}),
  };
  const rows = await db.auditEvent.findMany({ where, orderBy: { id: "desc" }, take: pageSize + 1 });
  const page = rows.slice(0, pageSize);
  return {
    events: page.map((e) => ({ ...e, id: e.id.toString() })),
    nextBefore: rows.length > pageSize ? page[page.length - 1]!.id.toString() : null,
  };
}
