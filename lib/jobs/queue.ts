import pg from "pg";
import PgBoss from "pg-boss";
import type { Tx } from "../db";
import { sqlText } from "../db/sql";
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
 * Queues jobs about requests in the caller's transaction, all in one statement, through
 * pg-boss's own insert (its documented `db` option runs it on our connection): a job exists
 * exactly when the change that needs it commits, and never for a change rolled back.
 */
export async function queueInTransaction(tx: Tx, jobs: RequestJob[]): Promise<void> {
  if (jobs.length === 0) return;
  // pg-boss builds the statement; it runs on the transaction's connection, so this instance is never started (no pool of its own, nothing to fail first).
  globalForBoss.latchkeyInserter ??= createBoss(env().DATABASE_URL, { worker: false });
  const boss = globalForBoss.latchkeyInserter;
  const executeSql = async (text: string, values: unknown[] = []) => ({
    rows: (
      await sqlText<unknown>(
        tx,
        text,
        values.map((v) => v ?? null),
      )
    ).rows,
  });
  await boss.insert(
    jobs.map((job) => ({ name: job.queue, data: { requestId: job.requestId }, startAfter: job.at, singletonKey: job.requestId })),
    { db: { executeSql } } as never,
  );
  // Jobs due now wake the worker at commit rather than at its next poll (lib/jobs/wake.ts).
  const now = Date.now();
  await wakeWorkersAtCommit(
    tx,
    jobs.filter((job) => job.at.getTime() <= now).map((job) => job.queue),
  );
}
