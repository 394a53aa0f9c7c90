import "server-only";
import { db } from "../db";
import { notFound } from "../errors";
import type { Principal } from "../policy/evaluate";
import { requestStages } from "../policy/stages";
import { mayViewRequest } from "./queries";

/**
 * Cheap answers to "has anything changed?" for pages that stay live: every change to a
 * request commits with its audit events, so the count and the newest id of its events make a
 * version that moves with any approval, execution step, reveal or expiry, made by any instance
 * or worker. The count is needed as well as the newest id: events take their ids just before
 * their transaction commits, and two transactions may commit in the other order, so a late
 * event can have an id below the newest one. Pages poll these and re-render from the server
 * only when the version moves.
 */
export interface LiveVersion {
  version: string;
  status?: string;
}

/** One request's version, for the people who may read it (others: not found). */
export async function requestVersion(who: Principal, id: string): Promise<LiveVersion> {
  const request = await db.accessRequest.findUnique({ where: { id }, select: { requesterId: true, stages: true, status: true } });
  if (!request || !mayViewRequest(who, request.requesterId, requestStages(request))) throw notFound("Request");
  const events = await db.auditEvent.aggregate({ where: { requestId: id }, _count: { _all: true }, _max: { id: true } });
  return { version: `${request.status}:${events._count._all}:${events._max.id ?? 0}`, status: request.status };
}

/** The version of everything on this person's "My requests" list. */
export async function myRequestsVersion(who: Principal): Promise<LiveVersion> {
  const [row] = await db.$queryRaw<{ last: bigint | null; events: bigint; count: bigint }[]>`
    SELECT e.last, e.events, (SELECT count(*) FROM "AccessRequest" WHERE "requesterId" = ${who.id}) AS count
    FROM (SELECT max(e.id) AS last, count(*) AS events FROM "AuditEvent" e JOIN "AccessRequest" r ON r.id = e."requestId" WHERE r."requesterId" = ${who.id}) e`;
  return { version: `${row?.count ?? 0}:${row?.events ?? 0}:${row?.last ?? 0}` };
}
