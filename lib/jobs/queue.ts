import PgBoss from "pg-boss";
import { logger } from "../log";

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

const globalForBoss = globalThis as unknown as { latchkeyBoss?: Promise<PgBoss> };

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

/** Creates pg-boss's schema and Latchkey's queues; run at start next to the migrations. */
export async function installQueues(connectionString: string): Promise<void> {
  const boss = createBoss(connectionString, { worker: false });
  await boss.start();
  try {
    for (const name of Object.values(QUEUES)) {
      const options = name === QUEUES.execute ? { retryLimit: 5, retryBackoff: true, retryDelay: 5 } : name === QUEUES.undo ? { retryLimit: 1000, retryBackoff: true, retryDelay: 5 } : { retryLimit: 10, retryBackoff: true, retryDelay: 5 };
      if (!(await boss.getQueue(name))) await boss.createQueue(name, { name, ...options });
    }
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

/** A sender for this process (no supervision, no cron): used to schedule work after commits. */
export function sender(connectionString: string): Promise<PgBoss> {
  globalForBoss.latchkeyBoss ??= (async () => {
    const boss = createBoss(connectionString, { worker: false });
    await boss.start();
    return boss;
  })();
  return globalForBoss.latchkeyBoss;
}

export async function stopSender(): Promise<void> {
  const boss = await globalForBoss.latchkeyBoss;
  globalForBoss.latchkeyBoss = undefined;
  await boss?.stop({ graceful: false, wait: true });
}
