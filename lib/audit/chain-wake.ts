import { db } from "../db";
import { sqlText } from "../db/sql";
import { logger } from "../log";

/**
 * Tells the chainer (lib/audit/chainer.ts), wherever it runs, that events were committed:
 * a NOTIFY on the worker's wake-up channel (lib/jobs/wake.ts), sent after the commit on a
 * connection of its own rather than inside the audited transaction. PostgreSQL serializes the
 * commits of transactions that notify, so a NOTIFY in every audited transaction would bring
 * back the global queue the chainer exists to remove.
 *
 * At most one is in flight per process, and at most one is sent every WAKE_SPACING_MS: a chainer
 * woken gathers the commits of the next 25 ms into one pass anyway, so a second wake-up in that
 * time would only cost a round trip (under load it was one more statement for every audited
 * change). A wake-up asked for meanwhile is sent once the time is up, never dropped, so the
 * last commit of a burst wakes the chainer too; one lost to a failure only means the chainer
 * finds the events at its next poll.
 */
export const CHAIN_WAKE = "audit-chain";
const CHANNEL = "latchkey_jobs";
/** The least time between two wake-ups sent by this process (the chainer's own gathering time). */
export const WAKE_SPACING_MS = 25;
const log = logger("audit");

let sending = false;
let again = false;
let waiting: NodeJS.Timeout | undefined;
let lastSent = -Infinity;

export function wakeChainer(): void {
  if (waiting !== undefined) return;
  if (sending) {
    again = true;
    return;
  }
  const early = lastSent + WAKE_SPACING_MS - performance.now();
  if (early > 0) {
    waiting = setTimeout(() => {
      waiting = undefined;
      send();
    }, early);
    waiting.unref();
    return;
  }
  send();
}

function send(): void {
  sending = true;
  again = false;
  lastSent = performance.now();
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
