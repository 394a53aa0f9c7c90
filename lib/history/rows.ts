import "server-only";
import { Prisma } from "@prisma/client";
import pg from "pg";
import { env } from "../env";
import { plainText } from "../http/plain";
import { HISTORY_COLUMNS, historyConditions, whereOf, type HistoryEvent } from "./conditions";
import type { HistoryFilters } from "./filters";

/**
 * Every event matching the filters, in time order, for the exports: one statement whose rows are
 * read in batches as the download takes them (streamedBatches), so memory stays bounded however
 * many rows there are, the export is one consistent snapshot, and the database scans once (a
 * text search is not redone for every batch). It runs on a connection of its own, straight through the pg driver: Prisma's
 * decoding of raw rows, not PostgreSQL, was what held exports back.
 */

/**
 * The statement an export runs: the events' columns (or, for CSV, `columns` shaped as the
 * export writes them, lib/history/export.ts) in time order. The benchmark compares COPY of the
 * plain columns' query with an export of the same rows.
 */
export async function exportQuery(
  filters: HistoryFilters,
  order: "newest" | "oldest" = "oldest",
  columns: Prisma.Sql = HISTORY_COLUMNS,
): Promise<Prisma.Sql | null> {
  const parts = await historyConditions(filters);
  if (parts === null) return null;
  const direction = order === "newest" ? Prisma.sql`DESC` : Prisma.sql`ASC`;
  return Prisma.sql`SELECT ${columns} FROM "AuditEvent" e ${whereOf(parts)} ORDER BY e."occurredAt" ${direction}, e.id ${direction}`;
}

/**
 * Exports running at once in this process. Each holds a connection of its own (outside the
 * pool) and a snapshot for as long as its download lasts, so without a bound a few people
 * exporting at once could take the database's connections and hold back its vacuum.
 */
export const MAX_RUNNING_EXPORTS = 4;
let running = 0;

/** A place for one export, or null while MAX_RUNNING_EXPORTS run; the function it returns gives the place back (once). */
export function exportSlot(): (() => void) | null {
  if (running >= MAX_RUNNING_EXPORTS) return null;
  running += 1;
  let given = false;
  return () => {
    if (given) return;
    given = true;
    running -= 1;
  };
}

/** A place for one export, or the answer to give while MAX_RUNNING_EXPORTS run: 503 with Retry-After. */
export function startExport(): { release: () => void } | { refusal: Response } {
  const release = exportSlot();
  if (release) return { release };
  return { refusal: plainText(503, `${MAX_RUNNING_EXPORTS} exports are running on this instance already; try again in a minute.`, { "retry-after": "60" }) };
}

/** The columns keep the types the pages get from Prisma: ids as bigint, times as UTC instants. */
const TIMESTAMP = 1114;
const INT8 = 20;
const types = {
  getTypeParser: (oid: number, format?: "text" | "binary") => {
    if (oid === TIMESTAMP) return (text: string) => new Date(`${text.replace(" ", "T")}Z`);
    if (oid === INT8) return (text: string) => BigInt(text);
    return pg.types.getTypeParser(oid, format);
  },
};

/**
 * For exports: ids and times as the text they are written out as, never a BigInt or a Date
 * made per cell only to be turned back into text (at 100,000 rows that churn was most of an
 * export's time). A timestamp(3) reads "2026-11-29 16:49:33.12"; an export writes the instant
 * as Date.toISOString() does, "2026-11-29T16:49:33.120Z".
 */
const asText = {
  getTypeParser: (oid: number, format?: "text" | "binary") => {
    if (oid === TIMESTAMP) return isoInstant;
    if (oid === INT8) return (text: string) => text;
    return pg.types.getTypeParser(oid, format);
  },
};

export function isoInstant(text: string): string {
  // Four-digit years take the short way; any other text is read as the typed rows read it.
  if (text.length < 19 || text[4] !== "-" || text[10] !== " ") return new Date(`${text.replace(" ", "T")}Z`).toISOString();
  const fraction = text.length > 20 ? text.slice(20, 23) : "";
  return `${text.slice(0, 10)}T${text.slice(11, 19)}.${fraction.padEnd(3, "0")}Z`;
}

/** Parameters as Prisma would send them: times in UTC (the columns hold UTC without a zone). */
const parameter = (v: unknown) => (v instanceof Date ? v.toISOString() : v);

/** An event as an export writes it: ids and the time as text (see asText). */
export type ExportedEvent = Omit<HistoryEvent, "id" | "seq" | "occurredAt"> & { id: string; seq: string | null; occurredAt: string };

export function historyRows(filters: HistoryFilters, order?: "newest" | "oldest", batch?: number): AsyncGenerator<HistoryEvent[]>;
export function historyRows(
  filters: HistoryFilters,
  order: "newest" | "oldest",
  batch: number,
  shape: "text",
  signal?: AbortSignal,
): AsyncGenerator<ExportedEvent[]>;
export async function* historyRows(
  filters: HistoryFilters,
  order: "newest" | "oldest" = "oldest",
  batch = 5000,
  shape: "typed" | "text" = "typed",
  signal?: AbortSignal,
): AsyncGenerator<HistoryEvent[] | ExportedEvent[]> {
  const query = await exportQuery(filters, order);
  if (query !== null) yield* streamedBatches<HistoryEvent>(query, batch, { types: shape === "text" ? asText : types }, signal);
}

/**
 * For the CSV export: each row as an array of the `columns` given (lib/history/export.ts), as
 * PostgreSQL's text. Rows as arrays of a few text values, not objects of nineteen parsed ones:
 * at 100,000 rows the driver's work per value was most of what an export cost.
 */
export async function* historyCells(
  filters: HistoryFilters,
  order: "newest" | "oldest",
  batch: number,
  columns: Prisma.Sql,
  signal?: AbortSignal,
): AsyncGenerator<(string | null)[][]> {
  const query = await exportQuery(filters, order, columns);
  if (query !== null) yield* streamedBatches<(string | null)[]>(query, batch, { types: raw, rowMode: "array" }, signal);
}

/** Every value as the text PostgreSQL sent. */
const raw = { getTypeParser: () => (text: string) => text };

/** Batches read from the database and not yet taken: with one waiting, reading from the socket pauses. */
const AHEAD = 1;

/**
 * The rows of one query, in batches as the caller takes them. The query runs once, as one
 * statement rather than through a cursor: PostgreSQL plans a cursor for its first rows and
 * never in parallel, which made an export take half again as long as COPY of the same query.
 * It runs in a read-only repeatable-read transaction with at most one parallel worker (beside
 * the portal's own work on the same server) and no statement timeout (a long download is not
 * a runaway query; a stalled one is ended by its caller). Memory stays bounded by reading
 * from the socket only while no batch waits untaken: paused, the database waits on its send
 * (as COPY does for a slow reader), and its worker with it. The caller ends it early by
 * returning or through `signal`, which also stops a wait for rows; either way the connection
 * is closed, which ends the statement (tests/integration/export-slots.test.ts).
 */
async function* streamedBatches<Row>(
  query: Prisma.Sql,
  batch: number,
  config: { types: { getTypeParser: (oid: number, format?: "text" | "binary") => (text: string) => unknown }; rowMode?: "array" },
  signal?: AbortSignal,
): AsyncGenerator<Row[]> {
  const connectionString = env().DATABASE_URL;
  const client = new pg.Client({ connectionString, application_name: "latchkey history export" });
  // A connection lost mid-export fails the query in progress; the event must not crash the process.
  client.on("error", () => undefined);
  const ready: Row[][] = [];
  let rows: Row[] = [];
  let finished = false;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  const woken = () => {
    wake?.();
    wake = null;
  };
  // The driver's socket: the only way to hold back a result it is reading (pg-cursor and pg-copy-streams reach it the same way).
  const socket = () => (client as unknown as { connection: { stream: import("node:net").Socket } }).connection.stream;
  let statement: pg.Query | null = null;
  /** Whether the statement has been sent and has not yet ended (pg's own flag for this is deprecated). */
  let running = false;
  const stop = () => {
    failure ??= new Error("the export was stopped");
    // A statement waiting in the database (on a lock, or on a scan that seldom matches) does not
    // see its client leave until it sends: it is cancelled as well (a cancel request, which pg
    // sends on a connection of its own).
    if (statement && running) {
      const canceller = new pg.Client({ connectionString }) as unknown as {
        connection: { on: (event: string, listener: () => void) => void };
        cancel: (client: pg.Client, query: pg.Query) => void;
      };
      canceller.connection.on("error", () => undefined);
      canceller.cancel(client, statement);
    }
    socket().destroy();
    woken();
  };
  signal?.addEventListener("abort", stop, { once: true });
  try {
    if (signal?.aborted) throw new Error("the export was stopped");
    await client.connect();
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    await client.query("SET LOCAL max_parallel_workers_per_gather = 1");
    await client.query("SET LOCAL statement_timeout = 0");
    statement = new pg.Query({ text: query.text, values: query.values.map(parameter), ...config } as pg.QueryConfig);
    // With a listener for rows and no callback, the driver hands each row over and keeps none.
    statement.on("row", (row: Row) => {
      rows.push(row);
      if (rows.length < batch) return;
      ready.push(rows);
      rows = [];
      if (ready.length >= AHEAD) socket().pause();
      woken();
    });
    statement.on("end", () => {
      running = false;
      if (rows.length) ready.push(rows);
      finished = true;
      woken();
    });
    statement.on("error", (error: unknown) => {
      running = false;
      failure ??= error;
      woken();
    });
    running = true;
    void client.query(statement as unknown as pg.QueryConfig);
    for (;;) {
      if (failure) throw failure;
      const next = ready.shift();
      if (next) {
        if (ready.length < AHEAD) socket().resume();
        yield next;
        continue;
      }
      if (finished) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    await client.query("COMMIT");
  } finally {
    signal?.removeEventListener("abort", stop);
    // However it ends (read to the end, stopped early, failed), closing the connection ends the
    // statement; a paused socket is let go first, so that the close is read.
    socket().resume();
    await client.end().catch(() => undefined);
  }
}
