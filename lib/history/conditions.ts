import "server-only";
import { Prisma } from "@prisma/client";
import { db } from "../db";
import type { HistoryFilters } from "./filters";

/**
 * The auditor's filters as SQL conditions on "AuditEvent" e, shared by the history's pages and
 * its exports so that both select exactly the same events. Dates are compared as times (not
 * turned into id ranges: ids are taken when an event is written, and events of concurrent
 * transactions need not take ids in the order of their times).
 */

export const HISTORY_COLUMNS = Prisma.sql`e.id, e.seq, e."occurredAt", e."actorType"::text AS "actorType", e."actorId", e."actorEmail", e.action, e."requestId",
  e."fromStatus"::text AS "fromStatus", e."toStatus"::text AS "toStatus", e.data, e.ip, e."userAgent", e.route, e."workflowId", e."targetId", e.environment, e.note, e.hash`;

export interface HistoryEvent {
  id: bigint;
  /** Null while the event waits to be linked into the chain. */
  seq: bigint | null;
  occurredAt: Date;
  actorType: string;
  actorId: string | null;
  actorEmail: string | null;
  action: string;
  requestId: string | null;
  fromStatus: string | null;
  toStatus: string | null;
  data: Record<string, unknown>;
  ip: string | null;
  userAgent: string | null;
  route: string | null;
  workflowId: string | null;
  targetId: string | null;
  environment: string | null;
  note: string | null;
  hash: string | null;
}

/**
 * The text a search matches, as the GIN index "AuditEvent_history_search_idx" spells it: a
 * condition must use this very expression for PostgreSQL to use the index.
 */
export const NOTE_TEXT = Prisma.sql`to_tsvector('english', coalesce(e.note, ''))`;

/**
 * The requests someone approved, read from the index on ("approverId", decision) alone, as
 * PostgreSQL's text of an array ('{id,id,...}'), or null for none. They go back into the events'
 * query as that array, a value the planner sees, so it knows how many there are and chooses
 * between reading each request's events and walking the history in time order. As one text
 * both ways: Prisma decoding a thousand ids into strings and encoding them again cost more
 * than the query.
 */
async function approvedBy(email: string): Promise<string | null> {
  const [row] = await db.$queryRaw<{ ids: string | null }[]>`
    SELECT array_agg(a."requestId")::text AS ids FROM "Approval" a WHERE a."approverId" = (SELECT u.id FROM "User" u WHERE u.email = ${email}) AND a.decision = 'approve'`;
  return row?.ids ?? null;
}

/** The conditions for a set of filters (none for no filters), or null when nothing can match. */
export async function historyConditions(f: HistoryFilters): Promise<Prisma.Sql[] | null> {
  const parts: Prisma.Sql[] = [];
  if (f.actor) parts.push(Prisma.sql`e."actorEmail" = ${f.actor}`);
  if (f.workflow) parts.push(Prisma.sql`e."workflowId" = ${f.workflow}`);
  if (f.target) parts.push(Prisma.sql`e."targetId" = ${f.target}`);
  if (f.environment) parts.push(Prisma.sql`e.environment = ${f.environment}`);
  if (f.status) parts.push(Prisma.sql`e."toStatus" = ${f.status}::"RequestStatus"`);
  if (f.action) parts.push(Prisma.sql`e.action = ${f.action}`);
  if (f.approver) {
    const requests = await approvedBy(f.approver);
    if (requests === null) return null;
    parts.push(Prisma.sql`e."requestId" = ANY(${requests}::text[])`);
  }
  // The index holds only events with a note (no other can match): say so, for the planner to use it.
  if (f.q) parts.push(Prisma.sql`e.note IS NOT NULL AND ${NOTE_TEXT} @@ websearch_to_tsquery('english', ${f.q})`);
  if (f.from) parts.push(Prisma.sql`e."occurredAt" >= ${f.from}`);
  if (f.to) parts.push(Prisma.sql`e."occurredAt" < ${f.to}`);
  return parts;
}

export const whereOf = (parts: Prisma.Sql[]): Prisma.Sql => (parts.length ? Prisma.sql`WHERE ${Prisma.join(parts, " AND ")}` : Prisma.empty);
