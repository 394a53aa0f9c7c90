import pg from "pg";
import PgBoss from "pg-boss";
import { Prisma } from "@prisma/client";
import type { Tx } from "../db";
import { sqlText } from "../db/sql";
import { isUnit, rideAlong } from "../db/after-commit";
import { env } from "../env";
import { logger } from "../log";
import { wakeWorkersAtCommit } from "./wake";

/** Queues Latchkey runs on pg-boss (Postgres-backed, shared safely by several instances). */
export const QUEUES = {
  /** One job per active grant, due at its expiry. */
  expireGrant: "grant-expire",
  /** One job per pending request, due when it may no longer wait for approval. */
  expirePending: "request-expire-pending",
  /** Carries out an approved request on an outside system (retried with backoff). */
  execute: "request-execute",
  /** Follows a one-off action (a job run) until it ends. */
  follow: "request-follow",
  /** Cleans up an outside system after a grant ended (retried until done). */
  undo: "request-undo",
  /** Sends due notifications from the outbox (lib/notifications). */
  notifyFlush: "notify-flush",
  /** One job per active grant, due a little before it expires. */
  notifyExpiring: "notify-expiring",
  /** Every minute: expire any grant or pending request past its time whose job was lost. */
  sweepExpired: "grant-sweep-expired",
  /** Daily: walk the audit chain and record the result. */
  auditVerify: "audit-verify",
} as const;

export interface ExpireGrantJob {
  requestId: string;
}

export interface ExpirePendingJob {
  requestId: string;
}

// One inserter per process, kept across hot reloads on globalThis, which does not type our key.
const globalForBoss = globalThis as unknown as { latchkeyInserter?: PgBoss };

export function createBoss(connectionString: string, options: { worker: boolean }): PgBoss {
  const boss = new PgBoss({
    connectionString,
    schema: "pgboss",
    supervise: options.worker,
    schedule: options.worker,
    migrate: true,
    max: 4,
  });
  boss.on("error", (error) => logger("queue").error("pg-boss error", { error: error.message }));
  return boss;
}

const INSTALL_LOCK_ID = 0x4c4b_5155; // "LKQU"

/**
 * Creates pg-boss's schema and Latchkey's queues; run at start next to the migrations.
 * Under an advisory lock: instances starting at once on a new database would otherwise
 * create the same queues together, and pg-boss's create_queue deadlocks (each attaches a
 * partition to the job table while the other waits on the queue row it inserted).
 */
export async function installQueues(connectionString: string): Promise<void> {
  const lock = new pg.Client({ connectionString });
  await lock.connect();
  try {
    await lock.query("SELECT pg_advisory_lock($1)", [INSTALL_LOCK_ID]);
    const boss = createBoss(connectionString, { worker: false });
    await boss.start();
    try {
      for (const name of Object.values(QUEUES)) {
        const options =
          name === QUEUES.execute
            ? { retryLimit: 5, retryBackoff: true, retryDelay: 5 }
            : name === QUEUES.undo
              ? { retryLimit: 1000, retryBackoff: true, retryDelay: 5 }
              : { retryLimit: 10, retryBackoff: true, retryDelay: 5 };
        if (!(await boss.getQueue(name))) await boss.createQueue(name, { name, ...options });
      }
    } finally {
      await boss.stop({ graceful: false, wait: true });
    }
  } finally {
    await lock.query("SELECT pg_advisory_unlock($1)", [INSTALL_LOCK_ID]).catch(() => undefined);
    await lock.end();
  }
}

export interface RequestJob {
  queue: string;
  requestId: string;
  at: Date;
}

/**
 * Queues jobs about requests in the caller's transaction, through pg-boss's own insert (its
 * documented `db` option hands us its statement): a job exists exactly when the change that
 * needs it commits, and never for a change rolled back. In a transaction of db.$transaction the
 * jobs it queues are gathered and inserted together, riding along in the statement that writes
 * its audit events (lib/db/after-commit.ts, rideAlong), so they cost no round trip of their own;
 * elsewhere, or when nothing takes them along, pg-boss's statement is sent by itself.
 */
export async function queueInTransaction(tx: Tx, jobs: RequestJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const gathered = queued.get(tx);
  // Gathered only while the transaction is open: on one that has ended, pg-boss's statement is refused as any other.
  if (gathered && isUnit(tx)) gathered.push(...jobs);
  else if (rideAlong(tx, "jobs", riderFor(tx))) queued.set(tx, [...jobs]);
  else await runInsert(tx, jobs);
  // Jobs due now wake the worker at commit rather than at its next poll (lib/jobs/wake.ts).
  const now = Date.now();
  await wakeWorkersAtCommit(
    tx,
    jobs.filter((job) => job.at.getTime() <= now).map((job) => job.queue),
  );
}

/** Jobs a transaction has queued and not yet written. */
const queued = new WeakMap<object, RequestJob[]>();
let warnedOfShape = false;

function riderFor(tx: Tx) {
  /** The transaction's jobs so far, no longer gathered: any queued after this go in another insert. */
  const take = () => {
    const jobs = queued.get(tx) ?? [];
    queued.delete(tx);
    return jobs;
  };
  return {
    build: async () => {
      // Taken before pg-boss builds the statement, so jobs queued meanwhile start another insert rather than go unwritten.
      const jobs = take();
      const tables = jobsAsCommonTables(await insertStatement(jobs));
      if (tables) return tables;
      queued.set(tx, [...jobs, ...(queued.get(tx) ?? [])]);
      if (!warnedOfShape) {
        warnedOfShape = true;
        logger("queue").warn("pg-boss's insert has a shape this code cannot take along in another statement; jobs are inserted by themselves");
      }
      return tables;
    },
    alone: async () => runInsert(tx, take()),
  };
}

/** pg-boss's insert of `jobs`: its text and values, as it would send them (built by pg-boss, sent by us). */
async function insertStatement(jobs: RequestJob[]): Promise<{ text: string; values: unknown[] }> {
  // pg-boss builds the statement; it runs on the transaction's connection, so this instance is never started (no pool of its own, nothing to fail first).
  globalForBoss.latchkeyInserter ??= createBoss(env().DATABASE_URL, { worker: false });
  let statement: { text: string; values: unknown[] } | undefined;
  const executeSql = async (text: string, values: unknown[] = []) => {
    statement = { text, values: values.map((v) => v ?? null) };
    return { rows: [] };
  };
  await globalForBoss.latchkeyInserter.insert(
    jobs.map((job) => ({ name: job.queue, data: { requestId: job.requestId }, startAfter: job.at, singletonKey: job.requestId })),
    { db: { executeSql } } as never,
  );
  if (!statement) throw new Error("pg-boss built no statement for the jobs");
  return statement;
}

async function runInsert(tx: Tx, jobs: RequestJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const { text, values } = await insertStatement(jobs);
  await sqlText(tx, text, values);
}

/**
 * pg-boss's insert (`WITH defaults as (...) INSERT INTO ...`, pg-boss 10) as items of a WITH
 * list, `defaults AS (...), latchkey_jobs AS (INSERT ...)`, for the statement it rides in; its
 * $1, $2... become that statement's parameters. Null for a statement of any other shape
 * (another version of pg-boss): its jobs are then inserted by themselves, never lost. The
 * version is pinned, and tests/integration/request-transition.test.ts holds the jobs written
 * this way equal to pg-boss's own, with no statement of their own.
 */
export function jobsAsCommonTables({ text, values }: { text: string; values: unknown[] }): Prisma.Sql | null {
  const shape = /^\s*WITH\s+defaults\s+as\s+\(([^()]*)\)\s*(INSERT\s+INTO\s[\s\S]*?)\s*$/i.exec(text);
  if (!shape) return null;
  const withParameters = (part: string) => {
    const pieces = part.split(/\$(\d+)/);
    const strings = pieces.filter((_, i) => i % 2 === 0);
    return Prisma.sql(Object.assign(strings, { raw: strings }), ...pieces.filter((_, i) => i % 2 === 1).map((n) => values[Number(n) - 1]));
  };
  return Prisma.sql`defaults AS (${withParameters(shape[1]!)}), latchkey_jobs AS (${withParameters(shape[2]!)})`;
}
