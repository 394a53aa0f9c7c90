import "server-only";
import { Prisma } from "@prisma/client";
import { db, PLANNED_EACH_TIME } from "../db";
import { HISTORY_COLUMNS, historyConditions, type HistoryEvent } from "./conditions";
import type { HistoryQuery } from "./filters";

export type { HistoryEvent } from "./conditions";

/**
 * The auditor's search over audit events, newest or oldest first by time ("occurredAt", then
 * id). Pages are keyset: a cursor is an event's id, and the page continues from that event's
 * place in time, so the last page costs what the first does.
 *
 * Without text, every filter has a btree index that leads with its column and continues in time
 * order, so a page is one index range scan. With text, matches can be many (a common word) or
 * few (a rare one), and neither an ordered scan nor "find all, then sort" stays fast for both:
 * the search walks the history a week at a time, newest week first, asking one GIN index for
 * that week's matches of the text and every other filter together, and stops at the first week
 * that fills the page. A common word costs one or two weeks; a rare one an index probe per week.
 */

export interface HistoryPage {
  events: HistoryEvent[];
  /** Cursors for the neighbouring pages, in the chosen order; null at either end. */
  next: string | null;
  previous: string | null;
}

const cursorAt = (id: bigint) => Prisma.sql`(SELECT c."occurredAt" FROM "AuditEvent" c WHERE c.id = ${id})`;
const cursorRow = (id: bigint) => Prisma.sql`(SELECT c."occurredAt", c.id FROM "AuditEvent" c WHERE c.id = ${id})`;

interface PageRead {
  descending: boolean;
  /** Events strictly before (`below`) or after (`above`) these events, in time order. */
  below?: bigint;
  above?: bigint;
  limit: number;
  text: boolean;
  /** Find the page's events in the index on ("occurredAt", id) INCLUDE ("requestId") first, then read those rows. */
  indexFirst: boolean;
  from?: Date;
  to?: Date;
}

/** Up to `limit` events between the cursors (if any), in time order, descending or not. */
async function readPage(parts: Prisma.Sql[], { descending, below, above, limit, text, indexFirst, from, to }: PageRead): Promise<HistoryEvent[]> {
  const conditions = [...parts];
  // An unknown cursor matches nothing (a row comparison with NULL is never true).
  if (below !== undefined) conditions.push(Prisma.sql`(e."occurredAt", e.id) < ${cursorRow(below)}`);
  if (above !== undefined) conditions.push(Prisma.sql`(e."occurredAt", e.id) > ${cursorRow(above)}`);
  const direction = descending ? Prisma.sql`DESC` : Prisma.sql`ASC`;
  const where = conditions.length ? Prisma.sql`WHERE ${Prisma.join(conditions, " AND ")}` : Prisma.empty;
  if (!text && indexFirst) {
    // Walking the history for an approver's requests passes thousands of events to keep a page
    // of them: read from the index alone, each costs no visit to its row (only the page's do).
    return db.$queryRaw<HistoryEvent[]>`${PLANNED_EACH_TIME}
      SELECT ${HISTORY_COLUMNS} FROM "AuditEvent" e WHERE e.id IN (
        SELECT e.id FROM "AuditEvent" e ${where} ORDER BY e."occurredAt" ${direction}, e.id ${direction} LIMIT ${limit})
      ORDER BY e."occurredAt" ${direction}, e.id ${direction}`;
  }
  if (!text) {
    return db.$queryRaw<HistoryEvent[]>`${PLANNED_EACH_TIME}
      SELECT ${HISTORY_COLUMNS} FROM "AuditEvent" e ${where} ORDER BY e."occurredAt" ${direction}, e.id ${direction} LIMIT ${limit}`;
  }
  // The weeks to walk lie between the period's, the cursors' and the history's ends (LEAST and GREATEST skip NULLs).
  const latest = Prisma.sql`LEAST(${to ?? null}::timestamp, ${below !== undefined ? cursorAt(below) : Prisma.sql`NULL`}, (SELECT max(x."occurredAt") FROM "AuditEvent" x))`;
  const earliest = Prisma.sql`GREATEST(${from ?? null}::timestamp, ${above !== undefined ? cursorAt(above) : Prisma.sql`NULL`}, (SELECT min(x."occurredAt") FROM "AuditEvent" x))`;
  const weeks = descending
    ? Prisma.sql`generate_series(date_trunc('week', ${latest}), date_trunc('week', ${earliest}), interval '-1 week')`
    : Prisma.sql`generate_series(date_trunc('week', ${earliest}), date_trunc('week', ${latest}), interval '1 week')`;
  // The weeks come sorted, and each week's matches sorted: the outer ORDER BY is then an
  // incremental sort that stops one week after the page is full, and the order is SQL's promise.
  return db.$queryRaw<HistoryEvent[]>`${PLANNED_EACH_TIME}
    SELECT e.* FROM (SELECT week FROM ${weeks} AS week ORDER BY week ${direction}) w
    CROSS JOIN LATERAL (
      SELECT ${HISTORY_COLUMNS} FROM "AuditEvent" e
      ${where} AND date_trunc('week', e."occurredAt") = w.week
      ORDER BY e."occurredAt" ${direction}, e.id ${direction} LIMIT ${limit}
    ) e
    ORDER BY w.week ${direction}, e."occurredAt" ${direction}, e.id ${direction} LIMIT ${limit}`;
}

/**
 * One page of events in the chosen order. `after` continues past a cursor, `before`
 * returns the page ahead of one, and `end: "last"` jumps to the far end.
 */
export async function searchHistory(query: HistoryQuery, pageSize = 50): Promise<HistoryPage> {
  const parts = await historyConditions(query);
  if (parts === null) return { events: [], next: null, previous: null };
  const newestFirst = query.sort === "newest";
  // Walking backwards (to the page before a cursor, or from the far end) reads in the opposite order.
  const backwards = query.before !== undefined || query.end === "last";
  const descending = newestFirst !== backwards;
  // In newest-first order, `after` means older (below in time) and `before` newer.
  const [below, above] = newestFirst ? [query.after, query.before] : [query.before, query.after];
  const rows = await readPage(parts, {
    descending,
    below,
    above,
    limit: pageSize + 1,
    text: query.q !== undefined,
    indexFirst: query.approver !== undefined,
    from: query.from,
    to: query.to,
  });
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
