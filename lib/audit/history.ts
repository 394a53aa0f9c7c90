import "server-only";
import { Prisma } from "@prisma/client";
import { db } from "../db";
import type { HistoryFilters, HistoryQuery } from "./history-filters";

/**
 * The auditor's search over audit events. Every filter has an index that leads with its
 * column and ends with the id, so a page is an index range scan whatever the filter, and
 * pages are keyset (by id), so the last page costs what the first does.
 *
 * Dates become id bounds. An event takes its id and its time from the database in one
 * statement (lib/audit/record.ts), so ids and times rise together, but without a lock between
 * writers nothing forbids two events an instant apart from taking them in opposite orders. So
 * the id bounds are widened by a margin and the times themselves are filtered exactly: the
 * bounds only keep the scan short.
 */

/** Far more than the instant between an event's id and its time (one statement's work). */
const ID_BOUNDS_MARGIN_MS = 60_000;

export const HISTORY_COLUMNS = Prisma.sql`e.id, e.seq, e."occurredAt", e."actorType"::text AS "actorType", e."actorId", e."actorEmail", e.action, e."requestId",
  e."fromStatus"::text AS "fromStatus", e."toStatus"::text AS "toStatus", e.data, e.ip, e."userAgent", e.route, e."workflowId", e."targetId", e.environment, e.note, e.hash`;

export interface HistoryEvent {
  id: bigint;
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

async function idBounds(from?: Date, to?: Date): Promise<{ low?: bigint; high?: bigint; empty: boolean }> {
  let low: bigint | undefined;
  let high: bigint | undefined;
  if (from) {
    const [row] = await db.$queryRaw<{ id: bigint }[]>`SELECT id FROM "AuditEvent" WHERE "occurredAt" >= ${from} ORDER BY "occurredAt", id LIMIT 1`;
    if (!row) return { empty: true };
    low = row.id;
  }
  if (to) {
    const [row] = await db.$queryRaw<{ id: bigint }[]>`SELECT id FROM "AuditEvent" WHERE "occurredAt" < ${to} ORDER BY "occurredAt" DESC, id DESC LIMIT 1`;
    if (!row) return { empty: true };
    high = row.id;
  }
  return { low, high, empty: low !== undefined && high !== undefined && low > high };
}

/** The WHERE clause for a set of filters, or null when nothing can match. */
export async function historyWhere(f: HistoryFilters): Promise<Prisma.Sql | null> {
  const parts: Prisma.Sql[] = [];
  if (f.actor) parts.push(Prisma.sql`e."actorEmail" = ${f.actor}`);
  if (f.workflow) parts.push(Prisma.sql`e."workflowId" = ${f.workflow}`);
  if (f.target) parts.push(Prisma.sql`e."targetId" = ${f.target}`);
  if (f.environment) parts.push(Prisma.sql`e.environment = ${f.environment}`);
  if (f.status) parts.push(Prisma.sql`e."toStatus" = ${f.status}::"RequestStatus"`);
  if (f.action) parts.push(Prisma.sql`e.action = ${f.action}`);
  if (f.approver) {
    parts.push(
      Prisma.sql`e."requestId" IN (SELECT a."requestId" FROM "Approval" a JOIN "User" u ON u.id = a."approverId" WHERE u.email = ${f.approver} AND a.decision = 'approve')`,
    );
  }
  if (f.q) parts.push(Prisma.sql`to_tsvector('english', coalesce(e.note, '')) @@ websearch_to_tsquery('english', ${f.q})`);
  if (f.from || f.to) {
    const bounds = await idBounds(f.from && new Date(f.from.getTime() - ID_BOUNDS_MARGIN_MS), f.to && new Date(f.to.getTime() + ID_BOUNDS_MARGIN_MS));
    if (bounds.empty) return null;
    if (bounds.low !== undefined) parts.push(Prisma.sql`e.id >= ${bounds.low}`);
    if (bounds.high !== undefined) parts.push(Prisma.sql`e.id <= ${bounds.high}`);
    if (f.from) parts.push(Prisma.sql`e."occurredAt" >= ${f.from}`);
    if (f.to) parts.push(Prisma.sql`e."occurredAt" < ${f.to}`);
  }
  return parts.length ? Prisma.sql`WHERE ${Prisma.join(parts, " AND ")}` : Prisma.empty;
}

function withCondition(where: Prisma.Sql, condition: Prisma.Sql): Prisma.Sql {
  return where === Prisma.empty ? Prisma.sql`WHERE ${condition}` : Prisma.sql`${where} AND ${condition}`;
}

export interface HistoryPage {
  events: HistoryEvent[];
  /** Cursors for the neighbouring pages, in the chosen order; null at either end. */
  next: string | null;
  previous: string | null;
}

/**
 * One page of events in the chosen order. `after` continues past a cursor, `before`
 * returns the page ahead of one, and `end: "last"` jumps to the far end; each is one
 * index range scan of at most pageSize + 1 rows.
 */
export async function searchHistory(query: HistoryQuery, pageSize = 50): Promise<HistoryPage> {
  const where = await historyWhere(query);
  if (where === null) return { events: [], next: null, previous: null };
  const newestFirst = query.sort === "newest";
  // Walking backwards (to the page before a cursor, or from the far end) reads in the opposite order.
  const backwards = query.before !== undefined || query.end === "last";
  const descending = newestFirst !== backwards;
  let clause = where;
  if (query.after !== undefined) clause = withCondition(clause, newestFirst ? Prisma.sql`e.id < ${query.after}` : Prisma.sql`e.id > ${query.after}`);
  if (query.before !== undefined) clause = withCondition(clause, newestFirst ? Prisma.sql`e.id > ${query.before}` : Prisma.sql`e.id < ${query.before}`);
  const rows = await db.$queryRaw<HistoryEvent[]>`
    SELECT ${HISTORY_COLUMNS} FROM "AuditEvent" e ${clause}
    ORDER BY e.id ${descending ? Prisma.sql`DESC` : Prisma.sql`ASC`} LIMIT ${pageSize + 1}`;
  const more = rows.length > pageSize;
  const events = rows.slice(0, pageSize);
  if (backwards) events.reverse();
  const first = events[0]?.id.toString() ?? null;
  const last = events.at(-1)?.id.toString() ?? null;
  return {
    events,
    next: backwards ? (query.end === "last" ? null : last) : more ? last : null,
    previous: backwards ? (more ? first : null) : query.after !== undefined ? first : null,
  };
}

/**
 * Every event matching the filters, in order, read in keyset batches: memory stays
 * bounded however many rows there are (the exports stream from this).
 */
export async function* historyRows(filters: HistoryFilters, order: "newest" | "oldest" = "oldest", batch = 5000): AsyncGenerator<HistoryEvent[]> {
  const where = await historyWhere(filters);
  if (where === null) return;
  let cursor: bigint | undefined;
  for (;;) {
    const clause = cursor === undefined ? where : withCondition(where, order === "newest" ? Prisma.sql`e.id < ${cursor}` : Prisma.sql`e.id > ${cursor}`);
    const rows = await db.$queryRaw<HistoryEvent[]>`
      SELECT ${HISTORY_COLUMNS} FROM "AuditEvent" e ${clause}
      ORDER BY e.id ${order === "newest" ? Prisma.sql`DESC` : Prisma.sql`ASC`} LIMIT ${batch}`;
    if (rows.length === 0) return;
    yield rows;
    if (rows.length < batch) return;
    cursor = rows.at(-1)!.id;
  }
}
