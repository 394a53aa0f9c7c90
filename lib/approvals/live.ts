import "server-only";
import { db } from "../db";
import { notFound } from "../errors";
import type { Principal } from "../policy/evaluate";
import { requestStages } from "../policy/stages";
import { mayViewRequest } from "./queries";

/**
 * Cheap answers to "has anything changed?" for pages that stay live: every change to a
 * request commits with its audit event, so the newest event's id is a version that moves
 * with any approval, execution step, reveal or expiry, made by any instance or worker.
 * Pages poll these and re-render from the server only when the version moves.
 */
export interface LiveVersion {
  version: string;
  status?: string;
}

/** One request's version, for the people who may read it (others: not found). */
export async function requestVersion(who: Principal, id: string): Promise<LiveVersion> {
  const request = await db.accessRequest.findUnique({ where: { id }, select: { requesterId: true, stages: true, status: true } });
  if (!request || !mayViewRequest(who, request.requesterId, requestStages(request))) throw notFound("Request");
  const last = await db.auditEvent.findFirst({ where: { requestId: id }, orderBy: { id: "desc" }, select: { id: true } });
  return { version: `${request.status}:${last?.id ?? 0}`, status: request.status };
}

/** The version of everything on this person's "My requests" list. */
export async function myRequestsVersion(who: Principal): Promise<LiveVersion> {
  const [row] = await db.$queryRaw<{ last: bigint | null; count: bigint }[]>`
    SELECT (SELECT max(e.id) FROM "AuditEvent" e JOIN "AccessRequest" r ON r.id = e."requestId" WHERE r."requesterId" = ${who.id}) AS last,
           (SELECT count(*) FROM "AccessRequest" WHERE "requesterId" = ${who.id}) AS count`;
  return { version: `${row?.count ?? 0}:${row?.last ?? 0}` };
}
