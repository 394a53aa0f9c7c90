import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "@prisma/client";
import pg from "pg";
import { logger } from "./log";
import { closeUnit, finishUnit, openUnit } from "./db/after-commit";
import { env } from "./env";
import { closeChanges } from "./db/changes";
import { callContext, withCallContext } from "./observability/call-context";
import { poolWait } from "./observability/metrics";

/**
 * Connections each process keeps to PostgreSQL at most (its pool), LATCHKEY_DB_POOL_SIZE
 * (lib/env.ts). Also how many transactions one process runs at once: a call that finds every
 * connection in use waits for one, in order, and is timed (latchkey_db_pool_wait_seconds).
 * Ten by default, not the twenty it was: a transaction holds its connection and row locks
 * while each of its statements waits for the web server's turn, so under a burst twenty in
 * flight all slowed together (PostgreSQL's sessions sat idle in transaction, waiting for the
 * web server), where with ten the rest of a burst waits for a connection in order and fewer
 * transactions share the server's turns. bench:approvals' paced p99 ÷ one-at-a-time p99, interleaved runs of one
 * build: 1.74 to 6.91 with ten (four of six runs at 3 or under), 3.60 to 14.38 with twenty
 * (none); flat-out throughput did not move (docs/BENCHMARKS.md, "The database pool and the tail").
 */
export function poolSize(): number {
  return env().LATCHKEY_DB_POOL_SIZE;
}

/**
 * Connections the worker's process keeps beyond LATCHKEY_DB_POOL_SIZE (20 in all by default,
 * what every process kept before the setting). Its jobs may want thirteen at once: one job of
 * each of its nine queues, two of which (execute, undo) hold a second connection while an
 * outside system answers, the audit chainer and its wake-up. With fewer, a job would wait for
 * one held through an outside call, and a wait past its limit fails the job (P2024).
 */
export const WORKER_EXTRA_CONNECTIONS = 10;

/** The most connections `pool` opens: set when it is made, widened for the worker; pg-pool reads it at each connect. */
export function connectionLimit(pool: pg.Pool): number {
  return pool.options.max ?? poolSize();
}

/** Widens this process's pool for the worker's jobs (lib/jobs/worker.ts calls it as it starts); pg-pool reads its limit at each connect. */
export function widenPoolForWorker(): void {
  processPool().options.max = poolSize() + WORKER_EXTRA_CONNECTIONS;
}

/**
 * Leading a statement's text, this keeps it unprepared: planned afresh for its values each time
 * it runs. For statements whose best plan depends on the values, as the history's filters' do
 * (an approver's thousand requests or three, a common word or a rare one): a generic plan for
 * those made an approver's page of history two and a half times slower.
 */
export const PLANNED_EACH_TIME = Prisma.raw("/* planned each time */ ");
/** Statement texts a process prepares at most: each is kept on every connection of the pool. */
export const MAX_PREPARED = 256;

/**
 * Names for prepared statements. A text seen a second time gets a name, and the driver then
 * prepares it once per connection: PostgreSQL parses it once and, after five runs, may keep a
 * generic plan rather than plan it again each time. Planning was most of the database's work
 * per approval (bench:approvals, flat out: 9.4 to 10.6 ms of its CPU per approval before, 5.6
 * to 6.0 ms after). Texts seen once (a one-off query), texts without parameters and those
 * starting with PLANNED_EACH_TIME stay unnamed, and at most `max` texts are named, so what
 * each connection keeps is bounded. Behind PgBouncer in transaction mode this needs version
 * 1.21 or later with max_prepared_statements of at least MAX_PREPARED.
 */
export type StatementNames = (query: { sql: string; args: unknown[] }) => string | undefined;

export function statementNamer(max = MAX_PREPARED): StatementNames {
  const names = new Map<string, string>();
  const seen = new Set<string>();
  return ({ sql, args }) => {
    const known = names.get(sql);
    if (known !== undefined) return known;
    // Without parameters a text may hold several statements, which a prepared statement may not.
    if (names.size >= max || args.length === 0 || sql.startsWith(PLANNED_EACH_TIME.text)) return undefined;
    if (!seen.has(sql)) {
      // Bounded too: past ten times the names' number, the texts seen once are forgotten.
      if (seen.size >= 10 * max) seen.clear();
      seen.add(sql);
      return undefined;
    }
    seen.delete(sql);
    const name = `latchkey_${names.size + 1}`;
    names.set(sql, name);
    return name;
  };
}

/** The one Prisma client of the process, and what lib/db/sql.ts needs of it. */
const globalForPrisma = globalThis as unknown as { latchkeyPrisma?: PrismaClient; latchkeyDriver?: Driver };

/**
 * What lib/db/sql.ts needs to reach the driver: each client's pool, each pool's statement
 * names (one map, so a text has one name on a connection), each transaction's connection.
 * Kept on globalThis like the client: Next.js may load this module more than once in a
 * process (each bundle its own copy), and all copies must share them.
 */
/**
 * A transaction's connection. `ended` is set the moment its COMMIT or ROLLBACK is sent (a
 * rollback can come while the transaction's code still runs: its time-out), and when it is
 * given back, so nothing sent after runs outside it, in autocommit or in the next transaction
 * on the connection.
 */
export interface TransactionConnection {
  client: pg.PoolClient;
  names: StatementNames | undefined;
  ended: boolean;
  /** Set when it ended at its time limit (its statements are then refused as a busy database's, lib/errors.ts). */
  expired?: boolean;
  /** Lets its BEGIN go, held back to go out with its first statement (see pipelined). */
  held?: () => void;
  /** Its BEGIN's failure (see pipelined): no COMMIT is sent behind a statement then. */
  beginFailed?: Error;
  /** Its COMMIT, when it went out right behind the transaction's last statement (lib/db/sql.ts, sqlRunLast). */
  commit?: Promise<pg.QueryResult>;
  /**
   * The first failure of a statement sent ahead (sendAhead): PostgreSQL refuses every statement
   * behind it in the transaction as "aborted", so this, not theirs, is the transaction's error.
   * Also a statement sent ahead or behind which COMMIT was to go (commitBehind) that could not be
   * written at all (written): no COMMIT goes out then.
   */
  failedAhead?: Error;
  /** The answers of the statements sent ahead, each settled when it is answered (never rejected): awaited before failedAhead is read at the end. */
  ahead: Array<Promise<unknown>>;
}

/** What of pg's client the pipelining of a transaction's BEGIN and COMMIT uses (pg 8.23's pipeline mode; tests/integration/round-trips.test.ts). */
type PipelinedClient = pg.PoolClient & {
  pipeline: boolean;
  connection: { stream: { cork(): void; uncork(): void } };
  _queryQueue: unknown[];
  _sentQueryQueue: unknown[];
  _activeQuery: unknown;
};

/**
 * A transaction's BEGIN goes out with its first statement, and its COMMIT right behind its
 * last (lib/db/sql.ts, sqlRunLast), each pair in one write, with no wait for the answer to the
 * first: two round trips fewer per transaction, of the six a request's making and approval
 * took at least (BEGIN, COMMIT). On a machine with two CPUs shared by the web server and
 * PostgreSQL, each round trip cost the web server's thread about a tenth of a millisecond in
 * the write that wakes the database's process, a fifth of its time flat out (bench:approvals'
 * CPU profile). For a transaction's life its connection is in pg's pipeline mode, in which a
 * statement is sent without waiting for the answer to the one before, which is still answered
 * first and in order; every other use of the pool (a cursor of the history's export, which
 * pipeline mode refuses) finds the connection as it was.
 *
 * PostgreSQL answers a BEGIN with an error only on a connection that is failing as a whole (it
 * ended, or the server ran out of memory), and the statement behind it then fails too; its
 * answer is awaited all the same before the COMMIT, which is not sent if it failed.
 */
function pipelined(connection: pg.PoolClient, on: boolean): boolean {
  const client = connection as PipelinedClient;
  // Switched back only when idle: a statement still in flight would otherwise never be answered.
  if (!on && (client._queryQueue.length > 0 || client._sentQueryQueue.length > 0 || client._activeQuery)) return false;
  client.pipeline = on;
  return true;
}

/**
 * Sends a transaction's last statement (`send`, which must send it before it returns) with the
 * transaction's COMMIT right behind it, in one write (pipelined); db.$transaction then awaits
 * that COMMIT's answer instead of sending its own. Not when its BEGIN failed, or its COMMIT is
 * already sent.
 */
export function commitBehind<R>(serving: TransactionConnection, send: () => Promise<R>): Promise<R> {
  if (serving.beginFailed || serving.failedAhead || serving.commit || serving.ended) return send();
  const release = hold(serving.client);
  try {
    const sent = written(serving, send);
    // Not written: no COMMIT behind it; db.$transaction fails with its error and rolls back.
    if (serving.failedAhead) return sent;
    serving.commit = serving.client.query("COMMIT");
    // Answered to db.$transaction, which awaits it: not an unhandled rejection meanwhile.
    serving.commit.catch(() => undefined);
    return sent;
  } finally {
    release();
  }
}

/**
 * Sends a statement of a transaction (`send`, which must send it before it returns) without
 * waiting for its answer, held back to go out in the same write as the transaction's next
 * statement, which PostgreSQL runs after it (pipelined): for a write whose answer the code does
 * not need before its next statement (lib/db/sql.ts, sqlSend), or a statement whose answer it
 * needs only after sending the next (sqlAhead). Its failure is kept (failedAhead) and is what a
 * statement behind it, or the transaction, then fails with.
 */
export function sendAhead<R>(serving: TransactionConnection, send: () => Promise<R>): Promise<R> {
  // Held before it is sent, so it stays in the buffer; a BEGIN held already stays held with it.
  const release = serving.held ?? hold(serving.client);
  serving.held = undefined;
  let answered: Promise<R>;
  try {
    answered = written(serving, send);
  } finally {
    serving.held = release;
  }
  serving.ahead.push(answered.catch((error: Error) => (serving.failedAhead ??= error)));
  return answered;
}

/** The errors of statements that could not be written (written): the transaction's own error, whatever its code did after. */
const unwritten = new WeakSet<Error>();

/**
 * Calls `send` and checks that its statement went onto the connection. pg refuses some statements
 * before writing them (a value it cannot convert, a name already used for another text), and
 * says so a tick later, when a COMMIT sent behind could already have committed the transaction
 * without it: a refusal here is the transaction's failure at once (failedAhead), so
 * db.$transaction sends no COMMIT. lib/db/sql.ts converts the values itself before sending
 * (submit), so a bad value throws in `send` and never reaches pg's bind, which would write a
 * Sync in the statement's place and let the transaction go on.
 */
function written<R>(serving: TransactionConnection, send: () => Promise<R>): Promise<R> {
  const client = serving.client as PipelinedClient;
  const inFlight = () => client._sentQueryQueue.length + (client._activeQuery ? 1 : 0);
  const before = inFlight();
  /** Kept as the transaction's failure; an Error, whatever was thrown (a value's toPostgres may throw anything). */
  const unsent = (thrown: unknown): Error => {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    unwritten.add(error);
    return error;
  };
  let answered: Promise<R>;
  try {
    answered = send();
  } catch (thrown) {
    const error = unsent(thrown);
    serving.failedAhead ??= error;
    return Promise.reject(error);
  }
  if (inFlight() > before) return answered;
  // pg's own words come a tick later; until then, and should they never come, this one.
  const refused = unsent("A statement of the transaction could not be sent to the database. Nothing of the transaction is saved.");
  serving.failedAhead ??= refused;
  answered.catch((thrown: unknown) => {
    const error = unsent(thrown);
    if (serving.failedAhead === refused) serving.failedAhead = error;
  });
  return answered;
}

/** PostgreSQL's refusal of a statement behind one that failed in the same transaction (SQLSTATE 25P02), as pg or Prisma's adapter words it. */
const ABORTED = /current transaction is aborted|25P02/;

/** The error a failed transaction is answered with: the failure ahead when the code's error followed from it (lib/db/sql.ts already passes it on for its own statements). */
function transactionError(serving: TransactionConnection, error: unknown): unknown {
  const ahead = serving.failedAhead;
  if (!ahead || ahead === error) return error;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const followed = code === "25P02" || (typeof message === "string" && ABORTED.test(message));
  return followed || unwritten.has(ahead) ? ahead : error;
}

/** Holds what is written to `connection` until released, so that what is sent meanwhile goes out in one write. */
function hold(connection: pg.PoolClient): () => void {
  const { stream } = (connection as PipelinedClient).connection;
  stream.cork();
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    stream.uncork();
  };
}

interface Driver {
  pools: WeakMap<object, pg.Pool>;
  names: WeakMap<pg.Pool, StatementNames>;
  connections: WeakMap<object, TransactionConnection>;
  /** The transaction each connection is serving now, so its COMMIT or ROLLBACK marks it ended. */
  serving: WeakMap<pg.Client, TransactionConnection>;
}
export const driver: Driver = (globalForPrisma.latchkeyDriver ??= {
  pools: new WeakMap(),
  names: new WeakMap(),
  connections: new WeakMap(),
  serving: new WeakMap(),
});

/** Marks `db` (every copy of this module's), so lib/db/sql.ts knows it from a transaction. */
export const PROCESS_CLIENT = Symbol.for("latchkey.db.processClient");

/**
 * The connection pool, made here so that a connection the server drops (restart, failover,
 * a terminated backend) leaves the pool at once, even when it dies in the middle of a
 * transaction whose end is never reached: otherwise each outage would keep a slot forever.
 */
function createPool(connectionString: string, names: StatementNames, connections: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: connections });
  driver.names.set(pool, names);
  // A call that finds every connection in use waits for one: how long, in latchkey_db_pool_wait_seconds. Under a burst the
  // pool running out is what makes everything in flight slow at once (bench:approvals' tail episodes), so operators see it.
  // pg-pool's own query() takes its connection through this method too.
  type Connected = (error: Error | undefined, client: pg.PoolClient, done: () => void) => void;
  const connect = pool.connect.bind(pool) as (callback?: Connected) => unknown;
  pool.connect = ((callback?: Connected) => {
    // A free connection for this call: fewer open than the pool may hold (one is opened for it), or more idle than calls
    // already queued for them (pg-pool hands idle ones out on its next tick, in order, so calls made together count).
    if (pool.totalCount < connectionLimit(pool) || pool.idleCount > pool.waitingCount) return callback ? connect(callback) : connect();
    const waited = poolWait.startTimer();
    if (callback)
      return connect((error, client, done) => {
        waited();
        callback(error, client, done);
      });
    return (connect() as Promise<pg.PoolClient>).finally(() => waited());
  }) as typeof pool.connect;
  pool.on("error", (error) => logger("db").warn("an idle connection was lost", { error: error.message }));
  pool.on("connect", (client) => {
    // A prepared statement that a migration has made stale (a column it returns changed type)
    // fails at once on this connection, and again at each use: the connection leaves the pool
    // when it is given back, and its successor prepares the statement afresh.
    client.query = function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === "string" ? args[0] : (args[0] as { text?: unknown } | undefined)?.text;
      if (text === "COMMIT" || text === "ROLLBACK") {
        const serving = driver.serving.get(client);
        if (serving) serving.ended = true;
      }
      // The class's query, looked up at each call (a benchmark or test may be watching it there).
      const result = (pg.Client.prototype.query as (...a: unknown[]) => unknown).apply(this, args);
      // A transaction's BEGIN, held back until now, goes out in the same write as this, its first statement (pipelined).
      const held = driver.serving.get(client)?.held;
      if (held) {
        driver.serving.get(client)!.held = undefined;
        held();
      }
      if (result instanceof Promise)
        result.catch((error: unknown) => {
          if (stalePrepared(error)) staleClients.add(client);
        });
      return result;
    } as typeof client.query;
  });
  pool.on("acquire", (client) => {
    // pg-pool assigns client.release right after this event; keep it, and hand out a wrapper
    // that releases once, also when the connection dies while the client is checked out.
    let inner: ((error?: Error | boolean) => void) | undefined;
    let released = false;
    const release = (error?: Error | boolean) => {
      if (released) return;
      released = true;
      client.removeListener("error", onError);
      // Later calls (Prisma ending a transaction on a connection that already died) do nothing.
      Object.defineProperty(client, "release", { configurable: true, writable: true, value: () => undefined });
      // Given back with an error, pg-pool ends the connection rather than keep it.
      inner?.call(client, staleClients.has(client) ? new Error("its prepared statements are out of date") : error);
    };
    const onError = (error: Error) => {
      logger("db").warn("a connection in use was lost", { error: error.message });
      release(error);
    };
    client.on("error", onError);
    Object.defineProperty(client, "release", {
      configurable: true,
      get: () => release,
      set: (fn: (error?: Error | boolean) => void) => {
        inner = fn;
      },
    });
  });
  return pool;
}

/** Connections holding a prepared statement that no longer matches the schema: ended when given back. */
const staleClients = new WeakSet<pg.Client>();
/** PostgreSQL's refusal to run a prepared statement whose result type has changed, or one it no longer has. */
const STALE_PREPARED = /cached plan must not change result type|prepared statement "latchkey_\d+" does not exist/;
export function stalePrepared(error: unknown): boolean {
  const { message } = (error ?? {}) as { message?: unknown };
  return typeof message === "string" && STALE_PREPARED.test(message);
}

/** Reads, which may run again: a read that never reached a live server changed nothing. */
const READS = new Set(["findUnique", "findUniqueOrThrow", "findFirst", "findFirstOrThrow", "findMany", "count", "aggregate", "groupBy"]);
/**
 * The server ended the connection (a restart, a failover, pg_terminate_backend): SQLSTATE 57P01 to 57P03 as the
 * driver adapter reports it, pg's own words for a socket closed under it, or Prisma's P1017.
 */
const LOST = /Code: `57P0[123]`|Connection terminated unexpectedly/;
/** A dead pooled connection fails at once; a query that ran this long was ended on purpose (a runaway read) and is not asked again. */
export const FAILED_AT_ONCE_MS = 250;

/**
 * Says why a read that met an ended connection is not asked again (it ran `ms` before it failed),
 * so that an operator (and a flaky test) can tell a runaway read ended on purpose from a dead
 * connection met late. Both retrying paths use it: Prisma's reads here, the driver's in lib/db/sql.ts.
 */
export function refusedLateRead(operation: string, ms: number): void {
  logger("db").warn("a read failed on an ended connection after it had run a while; not asking again", { operation, ms: Math.round(ms) });
}

export function lostConnection(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === "P1017" || (typeof message === "string" && LOST.test(message));
}

/** A client of its own, with a pool of `connections` (LATCHKEY_DB_POOL_SIZE unless given). */
export function createPrismaClient(connectionString: string, connections = poolSize()): PrismaClient {
  const names = statementNamer();
  const pool = createPool(connectionString, names, connections);
  // The pool is ours, but Prisma should close it on $disconnect all the same.
  const adapter = boundTransactions(
    new PrismaPg(pool, {
      disposeExternalPool: true,
      // The adapter's type asks for a name every time; the driver takes none as "not prepared".
      statementNameGenerator: names as (query: { sql: string; args: unknown[] }) => string,
    }),
  );
  const client = new PrismaClient({ adapter });
  // A connection the server ended while it sat idle in the pool fails the first query given to it, before the pool
  // hears it is gone; after a restart or failover every idle one is dead. A read that failed so at once is asked again
  // on another connection, as often as the pool has connections (each dead one fails at once and leaves the pool), so
  // a page or a session check does not fail for it. A read that ran a while before it was ended is not repeated.
  const retrying = client.$extends({
    query: {
      async $allOperations({ operation, args, query }) {
        for (let attempt = 0; ; attempt++) {
          const started = performance.now();
          try {
            return await query(args);
          } catch (error) {
            const atOnce = performance.now() - started < FAILED_AT_ONCE_MS;
            // A stale statement is asked again on another connection, except within a transaction: the failure has ended it.
            const stale = stalePrepared(error) && !callContext("inTransaction");
            const repeatable = READS.has(operation) && (stale || lostConnection(error));
            if (attempt >= connectionLimit(pool) || !atOnce || !repeatable) {
              if (repeatable && !atOnce) refusedLateRead(operation, performance.now() - started);
              throw error;
            }
            logger("db").warn(
              stale ? "a read met a prepared statement a migration made stale; asking again" : "a read met a connection the server had ended; asking again",
              {
                operation,
              },
            );
          }
        }
      },
    },
  });
  driver.pools.set(retrying, pool);
  // The extension keeps every method and type of the client; only its generic name differs.
  return retrying as unknown as PrismaClient;
}

/** Prisma's own limits for an interactive transaction, kept as db.$transaction's defaults. */
const MAX_WAIT_MS = 2_000;
const TIMEOUT_MS = 5_000;

interface TransactionOptions {
  /** How long to wait for a connection from the pool. */
  maxWait?: number;
  /** How long the transaction may run, from its BEGIN: past it, it is rolled back and its statements refused. */
  timeout?: number;
}

/**
 * db.$transaction: an interactive transaction that this module opens and ends itself on a
 * connection of the pool, and a unit of work (lib/db/after-commit.ts). What its code asks to
 * run before the commit (the audit events it recorded, written together) runs inside it once
 * its code is done; what it asks to run once it commits (caches forgetting the grants it ended
 * and the tokens it revoked, the audit chainer's wake-up) runs after the commit, and never for
 * a transaction rolled back.
 *
 * Written here rather than left to Prisma's $transaction because of its cost on the request
 * lifecycle's hot path, whose statements go to the driver (lib/db/sql.ts): Prisma's transaction
 * manager took about 0.6 ms of this process's CPU for a transaction of one statement, against
 * 0.25 ms for BEGIN, the statement and COMMIT on the same pool (3,000 in a loop, this machine),
 * and a request and its approval take two. Prisma's queries still work in it: the first one
 * opens a Prisma transaction bound to this connection (boundTransactions), which sends no BEGIN
 * or COMMIT of its own. The semantics are Prisma's: a rejection of `work` rolls back and is
 * passed on as it is; past `timeout` the transaction is rolled back and its connection given
 * back even while `work` still runs, every later statement in it is refused (P2028), and it
 * fails; waiting longer than `maxWait` for a connection fails with P2024, which callers
 * answer as a busy database. Stricter than Prisma: a COMMIT that PostgreSQL answers with
 * ROLLBACK (a statement had failed and `work` went on) fails the call, and nothing runs after it.
 */
async function ownTransaction<T>(client: PrismaClient, work: (tx: Tx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  if ((options as { isolationLevel?: unknown }).isolationLevel !== undefined)
    throw new Error("db.$transaction runs at the database's default isolation level (READ COMMITTED) and sets no other.");
  const pool = driver.pools.get(client)!;
  const timeout = options.timeout ?? TIMEOUT_MS;
  const connection = await connectWithin(pool, options.maxWait ?? MAX_WAIT_MS);
  const serving: TransactionConnection = { client: connection, names: driver.names.get(pool), ended: false, ahead: [] };
  let lost: Error | undefined;
  driver.serving.set(connection, serving);
  pipelined(connection, true);
  // BEGIN waits in the connection's buffer for the transaction's first statement, and goes out with it (pipelined).
  const release = hold(connection);
  const begun = connection.query("BEGIN");
  serving.held = release;
  // Its failure is the first statement's too, and is met again before the COMMIT: not an unhandled rejection meanwhile.
  begun.catch((error: Error) => (lost = serving.beginFailed = error));
  const started = performance.now();
  const prisma = boundPrisma(client, serving, timeout);
  const tx = transactionClient(prisma.client);
  driver.connections.set(tx, serving);
  openUnit(tx);
  /** Gives the connection back to the pool, once: ended (kept in driver.connections, so a statement its code still sends is refused). */
  let given = false;
  const giveBack = () => {
    if (given) return;
    given = true;
    serving.ended = true;
    serving.held = undefined;
    release();
    if (driver.serving.get(connection) === serving) driver.serving.delete(connection);
    // A connection whose BEGIN, COMMIT or ROLLBACK failed may be in any state, as may one with a statement still in flight: it leaves the pool.
    if (!pipelined(connection, false)) lost ??= new Error("a statement was still in flight when its transaction ended");
    // And one that PostgreSQL last said is still in a transaction ('T', or 'E' failed): the next borrower's statements would run in it.
    const status = connection.getTransactionStatus();
    if (status === "T" || status === "E") lost ??= new Error("its transaction was still open when it was given back");
    connection.release(lost);
  };
  let expired = false;
  /** The time limit's ROLLBACK, then the connection given back, even while `work` still runs (as Prisma's transactions did). */
  let expiry: Promise<void> | undefined;
  const timer = setTimeout(() => {
    if (serving.ended) return;
    expired = true;
    serving.expired = true;
    // The caller answers it as a busy database (lib/errors.ts), which logs nothing; this says which limit and where, for whoever looks into it.
    logger("db").error("a transaction ran past its time limit and is rolled back", { timeoutMs: timeout, route: callContext("audit")?.route });
    // Queued behind a statement still running; the wrapper in createPool marks the transaction ended as it is sent.
    expiry = connection.query("ROLLBACK").then(
      () => giveBack(),
      (error: Error) => {
        lost = error;
        giveBack();
      },
    );
  }, timeout);
  timer.unref();
  let committed: Array<() => void> = [];
  try {
    const value = await withCallContext("inTransaction", true, async () => {
      const result = await work(tx);
      await finishUnit(tx);
      return result;
    });
    await prisma.end(true);
    if (expired) throw expiredTransaction(timeout, performance.now() - started);
    // BEGIN's answer came with the first statement's (or comes with the COMMIT's, when nothing else was sent).
    if (serving.beginFailed) throw serving.beginFailed;
    // A statement sent ahead already failed, or one could not be written (written): no COMMIT.
    if (serving.failedAhead && !serving.commit) throw serving.failedAhead;
    const commit = await (serving.commit ?? connection.query("COMMIT")).catch((error: Error) => {
      lost = error;
      throw error;
    });
    await begun;
    // PostgreSQL answers COMMIT with ROLLBACK, not an error, when a statement of the transaction failed and its code went on.
    if (commit.command === "ROLLBACK") {
      // Each statement sent ahead was answered before the COMMIT: its failure is known once its answer's handlers ran.
      await Promise.all(serving.ahead);
      throw serving.failedAhead ?? rolledBackAtCommit();
    }
    committed = closeUnit(tx);
    return value;
  } catch (error) {
    await prisma.end(false);
    if (!serving.ended) await connection.query("ROLLBACK").catch((failure: Error) => (lost = failure));
    // A COMMIT sent behind a last statement that failed is answered ROLLBACK; its answer is awaited, so the connection goes back idle.
    await serving.commit?.catch((failure: Error) => (lost = failure));
    await begun.catch(() => undefined);
    // Answered before the ROLLBACK's (or COMMIT's) answer, awaited above.
    await Promise.all(serving.ahead);
    // A statement sent ahead failed first: the errors behind it ("current transaction is aborted") followed from it. Otherwise
    // the code's own error, as Prisma passes it on; past the time limit its statements were refused (P2028).
    throw transactionError(serving, error);
  } finally {
    clearTimeout(timer);
    closeUnit(tx);
    await expiry;
    giveBack();
    for (const run of committed) {
      try {
        run();
      } catch (error) {
        // The change is committed: what runs after it must not make it look failed.
        logger("db").error("a step after a commit failed", { error: (error as Error).message });
      }
    }
  }
}

/** A transaction whose code went on after one of its statements failed: PostgreSQL rolled it back at its COMMIT. */
function rolledBackAtCommit(): Error {
  return new Error("The transaction was rolled back at its commit: one of its statements had failed and its code went on. Nothing of it was saved.");
}

/** As Prisma refuses a statement in a transaction that has ended (P2028): it timed out, or failed, while its code ran on. */
export function transactionEnded(ended: Pick<TransactionConnection, "expired">): Error {
  return Object.assign(
    new Error(
      ended.expired
        ? "Transaction already closed: the transaction ran past its time limit and was rolled back before this statement, which was not run."
        : "Transaction already closed: the transaction had ended (committed, or rolled back after a failure) before this statement, which was not run.",
    ),
    { code: "P2028" },
  );
}

/** As Prisma says it (P2028) of a transaction that ran past its time limit. */
function expiredTransaction(timeout: number, ms: number): Error {
  return Object.assign(
    new Error(
      `Transaction already closed: the transaction ran past its time limit (${timeout} ms; ${Math.round(ms)} ms passed since it began) and was rolled back.`,
    ),
    { code: "P2028" },
  );
}

/** A connection from the pool within `ms`, or P2024 (a busy database); one given later goes back at once. */
function connectWithin(pool: pg.Pool, ms: number): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(
        Object.assign(new Error(`Timed out fetching a new connection from the connection pool (waited ${ms} ms; ${connectionLimit(pool)} connections).`), {
          code: "P2024",
        }),
      );
    }, ms);
    pool.connect().then(
      (connection) => {
        clearTimeout(timer);
        if (late) connection.release();
        else resolve(connection);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Prisma's part of a transaction of ownTransaction, opened at its first Prisma query: a Prisma
 * interactive transaction whose driver transaction is the connection already begun
 * (boundTransactions), held open until `end`, which lets it close (its commit and rollback
 * send nothing) and waits until it has.
 */
function boundPrisma(client: PrismaClient, serving: TransactionConnection, timeout: number) {
  let opened: Promise<Prisma.TransactionClient> | undefined;
  let closed: Promise<unknown> = Promise.resolve();
  let finish: (commit: boolean) => void = () => undefined;
  return {
    client: () =>
      (opened ??= new Promise((resolve, reject) => {
        if (serving.ended) return reject(transactionEnded(serving));
        const held = new Promise<void>((done, fail) => (finish = (commit) => (commit ? done() : fail(new Error("rolled back")))));
        closed = withCallContext("bound", serving, () =>
          client.$transaction(
            (ptx) => {
              resolve(ptx);
              return held;
            },
            { maxWait: MAX_WAIT_MS, timeout },
          ),
        ).catch(reject);
      })),
    async end(commit: boolean) {
      if (!opened) return;
      finish(commit);
      await closed.catch(() => undefined);
    },
  };
}

/**
 * The transaction client `work` is given: lib/db/sql.ts knows it (driver.connections) and runs
 * its statements on the connection itself; anything else (tx.user.findMany, tx.$executeRaw...)
 * runs on Prisma's part of the transaction, opened at the first such call. Its calls are plain
 * promises, started when made (Prisma's own start when awaited).
 */
function transactionClient(prisma: () => Promise<Prisma.TransactionClient>): Tx {
  const members = new Map<string, unknown>();
  const member = (name: string) =>
    new Proxy(function () {}, {
      apply: async (_target, _this, args: unknown[]) => ((await prisma()) as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(...args),
      get: (_target, method) =>
        typeof method === "symbol" || method === "then"
          ? undefined
          : async (...args: unknown[]) =>
              ((await prisma()) as unknown as Record<string, Record<string, (...a: unknown[]) => unknown>>)[name]![method]!(...args),
    });
  return new Proxy({} as Tx, {
    get(_target, name) {
      // Not a thenable, and no symbols (lib/db/sql.ts asks for PROCESS_CLIENT, which a transaction is not).
      if (typeof name === "symbol" || name === "then") return undefined;
      if (!members.has(name)) members.set(name, member(name));
      return members.get(name);
    },
  });
}

/**
 * Makes the adapter's transactions bindable: where the call context holds `bound` (lib/observability/call-context.ts), Prisma's transaction is the
 * connection db.$transaction has already begun (the adapter's own queries on it, with the same
 * statement names), and sends no BEGIN or COMMIT of its own (a "phantom" transaction to Prisma).
 */
function boundTransactions(factory: PrismaPg): PrismaPg {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const start = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => {
      const serving = callContext("bound");
      if (!serving) return start(isolationLevel);
      const bound = Object.create(adapter) as typeof adapter;
      // Refused once the transaction has ended (committed, rolled back, timed out): never run in autocommit, or on the connection's next user.
      const open = () => {
        if (serving.ended) throw transactionEnded(serving);
      };
      const nothing = async () => undefined;
      return Object.assign(bound, {
        client: serving.client,
        options: { usePhantomQuery: true },
        queryRaw: async (query: Parameters<typeof adapter.queryRaw>[0]) => (open(), adapter.queryRaw.call(bound, query)),
        executeRaw: async (query: Parameters<typeof adapter.executeRaw>[0]) => (open(), adapter.executeRaw.call(bound, query)),
        commit: nothing,
        rollback: nothing,
      });
    };
    return adapter;
  };
  return factory;
}

function unitOfWork(client: PrismaClient) {
  return (arg: unknown, options?: unknown) => {
    // The array form (a batch of Prisma's queries) stays Prisma's.
    if (typeof arg !== "function") return (client.$transaction as (a: unknown, o?: unknown) => unknown)(arg, options);
    return ownTransaction(client, arg as (tx: Tx) => Promise<unknown>, options as TransactionOptions | undefined);
  };
}

/** The pool of the process's client (lib/db/sql.ts, for reads outside a transaction). */
export function processPool(): pg.Pool {
  globalForPrisma.latchkeyPrisma ??= createPrismaClient(env().DATABASE_URL);
  return driver.pools.get(globalForPrisma.latchkeyPrisma)!;
}

export const db: PrismaClient = new Proxy({} as PrismaClient, {
  get(_target, prop) {
    if (prop === PROCESS_CLIENT) return true;
    globalForPrisma.latchkeyPrisma ??= createPrismaClient(env().DATABASE_URL);
    if (prop === "$transaction") return unitOfWork(globalForPrisma.latchkeyPrisma);
    const value = Reflect.get(globalForPrisma.latchkeyPrisma, prop);
    return typeof value === "function" ? value.bind(globalForPrisma.latchkeyPrisma) : value;
  },
});

export type Tx = Prisma.TransactionClient;

export async function disconnectDb(): Promise<void> {
  await closeChanges();
  await globalForPrisma.latchkeyPrisma?.$disconnect();
  globalForPrisma.latchkeyPrisma = undefined;
}
