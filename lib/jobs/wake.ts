import pg from "pg";
import type { Tx } from "../db";
import { sqlText } from "../db/sql";
import { logger } from "../log";

/**
 * Wakes the worker the moment a job it must run at once is committed, instead of at its
 * next poll (pg-boss polls each queue about once a second): a revocation's clean-up closes
 * the HAProxy route and ends the database sessions within milliseconds of the commit.
 *
 * The transaction that queues a job also sends a NOTIFY naming its queue; PostgreSQL
 * delivers it only when that transaction commits (never for one rolled back), to every
 * instance listening. Each instance's worker then fetches at once; pg-boss's fetch takes
 * jobs with SKIP LOCKED, so of two instances woken together exactly one runs the job.
 * Polling stays as the fallback: a notification lost to a dropped connection only means
 * the job waits for the next poll, and every worker fetches once on (re)connecting.
 */
const CHANNEL = "latchkey_jobs";
const RECONNECT_MS = 1_000;
const log = logger("worker");

/** Sends the wake-up for `queues` in the caller's transaction (delivered at its commit). */
export async function wakeWorkersAtCommit(tx: Tx, queues: string[]): Promise<void> {
  const distinct = [...new Set(queues)];
  if (distinct.length > 0) await sqlText(tx, "SELECT pg_notify($1, $2)", [CHANNEL, distinct.join(",")]);
}

export interface JobWakeListener {
  close: () => Promise<void>;
}

/**
 * Listens for wake-ups on a connection of its own and calls `wake(queue)` for each queue
 * named, and `wake(null)` after (re)connecting (anything sent while it was not listening).
 * Reconnects after a second when the connection drops.
 */
export async function listenForJobs(connectionString: string, wake: (queue: string | null) => void): Promise<JobWakeListener> {
  let closed = false;
  let current: pg.Client | null = null;
  let retry: NodeJS.Timeout | undefined;
  // Said once per outage, not at every retry.
  let warned = false;
  const again = () => {
    if (!closed) retry = setTimeout(() => void connect(), RECONNECT_MS);
  };
  async function connect(): Promise<void> {
    const client = new pg.Client({ connectionString, application_name: "latchkey-worker-wake" });
    let lost = false;
    const drop = (error?: Error) => {
      if (lost) return;
      lost = true;
      if (current === client) current = null;
      if (error && !closed && !warned) log.warn("stopped hearing job wake-ups; the worker polls until it is back", { error: error.message });
      if (error) warned = true;
      again();
    };
    client.on("error", drop);
    client.on("end", () => drop());
    client.on("notification", (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      for (const queue of message.payload.split(",")) wake(queue);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      drop(error as Error);
      return;
    }
    if (closed) {
      await client.end().catch(() => undefined);
      return;
    }
    current = client;
    warned = false;
    wake(null);
  }
  await connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      const client = current;
      current = null;
      if (client) {
        client.removeAllListeners("end");
        await client.end().catch(() => undefined);
      }
    },
  };
}
