import type PgBoss from "pg-boss";
import { expireGrant, expirePending, sweepExpiredGrants } from "../approvals/engine";
import { followQueued, notifyExpiring, performQueued, undoQueued } from "../approvals/engine";
import { withAuditContext } from "../audit/context";
import { logger } from "../log";

const log = logger("worker");
import { verifyAuditChain } from "../audit/verify";
import { maintainSigningKeys } from "../credentials/key-maintenance";
import { keyring } from "../credentials/keyring";
import { resealStep } from "../credentials/reseal";
import { restoreFenceStep } from "../approvals/restore-fence";
import { env } from "../env";
import { widenPoolForWorker } from "../db";
import { SYSTEM } from "../audit/record";
import { backfillAndAnchor } from "../audit/anchor";
import { startChainer } from "../audit/chainer";
import { CHAIN_WAKE } from "../audit/chain-wake";
import { haproxyProcessId, reconcileRoutes } from "../integrations/haproxy/after-reload";
import { pruneRateLimits } from "../security/rate-limit";
import { pruneIdempotencyKeys } from "../api/idempotency";
import { flushNotifications } from "../notifications/deliver";
import { createBoss, QUEUES, type ExpireGrantJob, type ExpirePendingJob } from "./queue";
import { listenForJobs } from "./wake";

/**
 * Rotation on schedule, the key files and their announcement; when the announcement
 * (the hook) reloaded HAProxy, its routes map is reconciled once the new process answers,
 * and on every other step in case HAProxy was reloaded by someone else.
 */
export async function signingKeyStep(now = new Date()) {
  const pid = await haproxyProcessId();
  const step = await maintainSigningKeys(now);
  await reconcileRoutes(step.announced ? { replacing: pid } : {});
  return step;
}

/**
 * The background worker: expires grants when their time is up. Jobs live in Postgres, so
 * a restart loses nothing, and several workers can run side by side.
 */
export function startWorker(connectionString: string, options: { pollingIntervalSeconds?: number } = {}): Promise<PgBoss> {
  // Job handlers inherit this context (pg-boss polls from timers set up inside it), so their audit events say "worker".
  return withAuditContext({ route: "worker" }, () => runWorker(connectionString, options));
}

async function runWorker(connectionString: string, options: { pollingIntervalSeconds?: number }): Promise<PgBoss> {
  // Its jobs may hold more connections at once than a web server's transactions need (lib/db.ts, WORKER_EXTRA_CONNECTIONS).
  widenPoolForWorker();
  // The worker seals secrets and chains events too: like the web server, it refuses to start under a key that cannot open what is there.
  const { encryptionKeyProblem } = await import("../credentials/reseal");
  const keyProblem = await encryptionKeyProblem();
  if (keyProblem) throw new Error(`The worker cannot start: ${keyProblem}`);
  const boss = createBoss(connectionString, { worker: true });
  await boss.start();
  const pollingIntervalSeconds = options.pollingIntervalSeconds ?? 1;
  // Worker ids by queue, so a wake-up (lib/jobs/wake.ts) can make the right one fetch at once.
  const workers = new Map<string, string>();
  workers.set(
    QUEUES.expireGrant,
    await boss.work<ExpireGrantJob>(QUEUES.expireGrant, { pollingIntervalSeconds, batchSize: 1 }, async ([job]) => {
      if (!job) return;
      const outcome = await expireGrant(job.data.requestId);
      // A job that runs a little early (clock skew between hosts) is re-queued for the rest.
      if (outcome === "not-due") throw new Error(`grant ${job.data.requestId} is not due yet`);
    }),
  );
  workers.set(
    QUEUES.expirePending,
    await boss.work<ExpirePendingJob>(QUEUES.expirePending, { pollingIntervalSeconds, batchSize: 1 }, async ([job]) => {
      if (!job) return;
      if ((await expirePending(job.data.requestId)) === "not-due") throw new Error(`request ${job.data.requestId} is not due yet`);
    }),
  );
  workers.set(
    QUEUES.execute,
    await boss.work<ExpireGrantJob>(QUEUES.execute, { pollingIntervalSeconds, batchSize: 1, includeMetadata: true }, async ([job]) => {
      if (!job) return;
      await performQueued(job.data.requestId, job.retryCount >= job.retryLimit);
    }),
  );
  workers.set(
    QUEUES.follow,
    await boss.work<ExpireGrantJob>(QUEUES.follow, { pollingIntervalSeconds, batchSize: 1 }, async ([job]) => {
      if (job && (await followQueued(job.data.requestId)) === "running") await boss.send(QUEUES.follow, job.data, { startAfter: 5 });
    }),
  );
  workers.set(
    QUEUES.undo,
    await boss.work<ExpireGrantJob>(QUEUES.undo, { pollingIntervalSeconds, batchSize: 1 }, async ([job]) => {
      if (job) await undoQueued(job.data.requestId);
    }),
  );
  const flush = async () => {
    const { retryAt } = await flushNotifications();
    if (retryAt) await boss.send(QUEUES.notifyFlush, {}, { startAfter: retryAt });
  };
  workers.set(QUEUES.notifyFlush, await boss.work(QUEUES.notifyFlush, { pollingIntervalSeconds, batchSize: 1 }, flush));
  workers.set(
    QUEUES.notifyExpiring,
    await boss.work<ExpireGrantJob>(QUEUES.notifyExpiring, { pollingIntervalSeconds, batchSize: 1 }, async ([job]) => {
      if (job && (await notifyExpiring(job.data.requestId))) await flush();
    }),
  );
  await boss.work(QUEUES.sweepExpired, { pollingIntervalSeconds: 5 }, async () => {
    const n = await sweepExpiredGrants();
    if (n > 0) log.info("sweep expired grants or requests whose job had gone missing", { count: n });
    await flush();
    await pruneRateLimits();
    await pruneIdempotencyKeys();
    await signingKeyStep();
    // While the ring holds previous keys, move one batch of sealed values to the current key each sweep.
    if (keyring().length > 1)
      await resealStep(SYSTEM).catch((error: Error) => log.error("could not re-seal under the current encryption key", { error: error.message }));
    // A database that went back in time (restored from a backup) is fenced before anything trusts its grants.
    if (env().LATCHKEY_RESTORE_MARKER)
      await restoreFenceStep(SYSTEM).catch((error: Error) => log.error("could not check for or fence a restored database", { error: error.message }));
  });
  await boss.schedule(QUEUES.sweepExpired, "* * * * *");
  await boss.work(QUEUES.auditVerify, { pollingIntervalSeconds: 30 }, async () => {
    const result = await verifyAuditChain("scheduled");
    if (!result.ok) log.error("the audit chain is broken", { firstBadSeq: String(result.firstBadSeq), problem: result.problem });
  });
  await boss.schedule(QUEUES.auditVerify, "17 3 * * *");
  // Events from before the audit chain get their workflow, target and environment and are anchored, once.
  await backfillAndAnchor(SYSTEM).catch((error: Error) => log.error("could not anchor the events recorded before the audit chain", { error: error.message }));
  // Links committed audit events into the chain (one chainer in the cluster at a time), woken by writers after their commits.
  const chainer = startChainer();
  const wake = await listenForJobs(connectionString, (queue) => {
    if (queue === null || queue === CHAIN_WAKE) chainer.wake();
    for (const [name, id] of workers) if (queue === null || queue === name) boss.notifyWorker(id);
  });
  // The wake-up connection and the chainer close with the worker, before pg-boss stops.
  const stop = boss.stop.bind(boss);
  boss.stop = async (stopOptions) => {
    await wake.close();
    await chainer.close();
    return stop(stopOptions);
  };
  // Catch up at once on anything that fell due while no worker was running.
  await sweepExpiredGrants();
  // Key files exist from the start, so a verifier reading them can start with the worker.
  await signingKeyStep().catch((error: Error) => log.error("could not maintain the signing keys at start", { error: error.message }));
  return boss;
}
