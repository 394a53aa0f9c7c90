import { Prisma, type PrismaClient } from "@prisma/client";
import pg from "pg";
import { lastStatement } from "./after-commit";
import {
  commitBehind,
  driver,
  sendAhead,
  FAILED_AT_ONCE_MS,
  connectionLimit,
  processPool,
  PROCESS_CLIENT,
  refusedLateRead,
  stalePrepared,
  transactionEnded,
  type StatementNames,
  type Tx,
} from "../db";
import { databaseRefusal } from "../errors";

/**
 * Statements of the request lifecycle's hot path (making, deciding and showing a request),
 * sent straight to the driver. Prisma's client costs this process about 0.5 ms of CPU for a
 * raw statement and 1 ms for a model query, against 0.13 ms for the same statement through pg
 * (a loop of 3,000 reads of one row, this machine); a request and its approval take about
 * twenty statements, which made the client about a third of the engine's busy time per
 * approval (a CPU profile under bench:approvals' load). Prisma keeps everything else: the
 * schema, migrations, and every query off this path (db.$transaction, lib/db.ts, begins and
 * ends transactions itself, for the same reason, and Prisma's queries join them).
 *
 * Inside db.$transaction a statement runs on the transaction's own connection (lib/db.ts
 * records which), so it sees and is part of what the transaction has done, and once the
 * transaction's COMMIT or ROLLBACK has been sent it refuses to run; outside one, on the process's pool. Rows come back as Prisma's would: `timestamp` columns (stored as UTC)
 * as Dates read as UTC, `bigint` as BigInt, JSON parsed; Dates are written as UTC. Texts are
 * prepared by the same names as Prisma's (lib/db.ts, statementNamer). A transaction client
 * that db.$transaction did not open (a test's own client) falls back to Prisma's $queryRawUnsafe.
 */

const TIMESTAMP = 1114;
const INT8 = 20;

const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === TIMESTAMP) return (text: string) => new Date(`${text.replace(" ", "T")}Z`);
    if (oid === INT8) return (text: string) => BigInt(text);
    return pg.types.getTypeParser(oid, format as "text");
  }) as typeof pg.types.getTypeParser,
};

/** Values as Prisma sends them: Dates as UTC (a `timestamp` column ignores the zone), BigInts as text. */
function valueOf(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "bigint") return value.toString();
  return value;
}

type Queryable = Pick<pg.ClientBase, "query">;
/** Where a statement runs: a transaction of db.$transaction, or `db` itself (the pool). */
export type On = Tx | PrismaClient;

/** pg's own conversion of a value to what it writes (not in its types; the same function its bind calls). */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue;

/**
 * Sends a statement now and returns its answer. Its values are converted to what pg writes
 * (valueOf, then pg's prepareValue, which leaves them as they are when pg converts them again)
 * before anything is written, so a value that cannot be written throws here: pg would find it
 * only after writing the statement's Parse, and would then write a Sync in its place and let the
 * transaction go on without it, which a statement sent ahead must never do (lib/db.ts, written).
 */
function submit<T>(on: Queryable, names: StatementNames | undefined, text: string, given: readonly unknown[]) {
  const values = given.map((value) => prepareValue(valueOf(value)));
  const name = names?.({ sql: text, args: values });
  return on.query<T & pg.QueryResultRow>({ name, text, values, types });
}

/**
 * Runs a statement (its text with $1, $2... and its values) and returns its rows. In a
 * transaction of db.$transaction it runs on that transaction's connection; given `db`, on the
 * pool, where only reads belong: a read that meets a connection the server had ended is asked
 * again on another, as Prisma's reads are (lib/db.ts). Any other client (a test's own) runs it
 * through Prisma.
 */
export async function sqlText<T>(on: On, text: string, values: readonly unknown[]): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
  if ((on as unknown as Record<symbol, unknown>)[PROCESS_CLIENT] === true) {
    const pool = processPool();
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        return await submit<T>(pool, driver.names.get(pool), text, values);
      } catch (error) {
        // A dead connection fails at once; a statement a migration made stale fails on its connection, which then leaves the pool.
        // Prisma's words for a lost connection and pg's own alike (lib/errors.ts).
        // A read that ran longer was ended on purpose and is not asked again (FAILED_AT_ONCE_MS, as in lib/db.ts).
        const lost = databaseRefusal(error) === "unreachable";
        const ran = performance.now() - started;
        const again = stalePrepared(error) || (lost && ran < FAILED_AT_ONCE_MS);
        if (attempt >= connectionLimit(pool) || !again) {
          if (lost && ran >= FAILED_AT_ONCE_MS) refusedLateRead("sql", ran);
          throw error;
        }
      }
    }
  }
  const connection = driver.connections.get(on);
  if (connection?.ended) throw transactionEnded(connection);
  if (connection)
    return submit<T>(connection.client, connection.names, text, values).catch((error: unknown) => {
      // Behind a statement sent ahead that failed, this one was refused as "aborted": the transaction's error is that one's.
      throw connection.failedAhead ?? error;
    });
  const rows = await on.$queryRawUnsafe<(T & pg.QueryResultRow)[]>(text, ...values);
  return { rows, rowCount: rows.length } as pg.QueryResult<T & pg.QueryResultRow>;
}

/** The rows of a statement built with sql`...` (Prisma.sql: values become parameters). */
export async function sqlRows<T>(on: On, query: Prisma.Sql): Promise<T[]> {
  return (await sqlText<T>(on, query.text, query.values)).rows;
}

/** The one row a statement returns, or null. */
export async function sqlRow<T>(on: On, query: Prisma.Sql): Promise<T | null> {
  return (await sqlRows<T>(on, query))[0] ?? null;
}

export const sql = Prisma.sql;
export const join = Prisma.join;
export const raw = Prisma.raw;

/** Runs a statement and returns how many rows it changed. */
export async function sqlRun(on: On, query: Prisma.Sql): Promise<number> {
  return (await sqlText(on, query.text, query.values)).rowCount ?? 0;
}

/**
 * Runs a statement of a transaction of db.$transaction, as sqlRun does; when it is the
 * transaction's last (lib/db/after-commit.ts, lastStatement), the transaction's COMMIT goes out
 * right behind it, in the same write, and is answered to db.$transaction (lib/db.ts,
 * commitBehind): one round trip for both.
 */
export async function sqlRunLast(tx: Tx, query: Prisma.Sql): Promise<number> {
  const connection = driver.connections.get(tx);
  if (!connection || connection.ended || !lastStatement(tx)) return sqlRun(tx, query);
  const { rowCount } = await commitBehind(connection, () => submit(connection.client, connection.names, query.text, query.values));
  return rowCount ?? 0;
}

/**
 * Sends a write of a transaction of db.$transaction whose answer the code does not need (an
 * insert returning nothing) and returns without waiting for it: it goes out in the same write
 * as the transaction's next statement, which runs after it (lib/db.ts, sendAhead), one round
 * trip fewer. Its failure fails that statement, or the commit, with its own error. Elsewhere it
 * runs as sqlRun does, and is awaited.
 */
export async function sqlSend(tx: Tx, query: Prisma.Sql): Promise<void> {
  const connection = driver.connections.get(tx);
  if (!connection) {
    await sqlRun(tx, query);
    return;
  }
  if (connection.ended) throw transactionEnded(connection);
  // Handled by sendAhead (kept as the transaction's failure), and not awaited here.
  void sendAhead(connection, () => submit(connection.client, connection.names, query.text, query.values));
}

/**
 * The rows of a statement of a transaction of db.$transaction, sent with the transaction's next
 * statement rather than by itself (lib/db.ts, sendAhead): for two statements whose second does
 * not depend on the first's answer, as one round trip. PostgreSQL still runs them one after the
 * other, each seeing what the one before did (the second takes its snapshot once the first,
 * and any wait for a lock it made, is done). Elsewhere it runs as sqlRows does.
 */
export function sqlAhead<T>(tx: Tx, query: Prisma.Sql): Promise<T[]> {
  const connection = driver.connections.get(tx);
  if (!connection || connection.ended) return sqlRows<T>(tx, query);
  const rows = sendAhead(connection, () => submit<T>(connection.client, connection.names, query.text, query.values)).then((result) => result.rows);
  // Its failure is also the transaction's (sendAhead): not an unhandled rejection if the caller fails first on another.
  rows.catch(() => undefined);
  return rows;
}
