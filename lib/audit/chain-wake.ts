import { db } from "../db";
import { sqlText } from "../db/sql";
import { logger } from "../log";

/**
 * Tells the chainer (lib/audit/chainer.ts), wherever it runs, that events were committed:
 * a NOTIFY on the worker's wake-up channel (lib/jobs/wake.ts), sent after the commit on a
 * connection of its own rather than inside the audited transaction. PostgreSQL serializes the
 * commits of transactions that notify, so a NOTIFY in every audited transaction would bring
 * back the global queue the chainer exists to remove. Here at most one is in flight per
 * process, and wake-ups asked for meanwhile become one more when it is done; a wake-up that
 * is lost only means the chainer finds the events at its next poll.
 */
export const CHAIN_WAKE = "audit-chain";
const CHANNEL = "latchkey_jobs";
const log = logger("audit");

let sending = false;
let again = false;

export function wakeChainer(): void {
  if (sending) {
    again = true;
    return;
  }
  sending = true;
  sqlText(db, "SELECT pg_notify($1, $2)", [CHANNEL, CHAIN_WAKE])
    .catch((error: Error) => log.warn("could not wake the audit chainer; it will find the events at its next poll", { error: error.message }))
    .finally(() => {
      sending = false;
      if (again) {
        again = false;
        wakeChainer();
      }
    });
}
