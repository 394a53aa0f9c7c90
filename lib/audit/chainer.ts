import { db, type Tx } from "../db";
import { sql, sqlAhead, sqlRow, sqlRows, sqlRun, sqlText } from "../db/sql";
import { currentKey } from "../credentials/keyring";
import { logger } from "../log";
import { linkHash } from "./chain";
import { EVENT_COLUMNS, sealMatches, type EventRow } from "./event-check";

/**
 * The chainer: links committed audit events into the one ordered, gap-free chain, shortly
 * after they commit. Writers seal each event in their own transaction and take no lock
 * (lib/audit/record.ts), so audited changes in every instance no longer queue on the chain's
 * head; only this chainer writes the head.
 *
 * Order and visibility. An event has no place (`seq` is null) until the chainer gives it one,
 * in the order the chainer sees committed events: each pass reads the unchained events its
 * snapshot can see (those of transactions still open are invisible, and are found by a later
 * pass once they commit, whatever their id), gives them the next places after the head, and
 * moves the head, in one transaction. So an event that commits out of order is neither skipped
 * (it stays unchained until a pass sees it) nor linked twice (a place is given only where `seq`
 * is still null, and the database allows that change once, from null). Places follow the
 * order events became visible, not their ids or times; history orders by time (lib/history/conditions.ts).
 *
 * One chainer at a time in the cluster: each pass takes a transaction-scoped advisory lock
 * and skips when another holds it (warning once the lock has been held elsewhere for a
 * minute); the head row is locked as well. Crash-safe: a pass is one transaction, so a
 * chainer killed mid-way leaves events either linked with the head moved past them or
 * untouched, and the next pass goes on from the head.
 *
 * A pass runs on the driver (lib/db/sql.ts) in four round trips: BEGIN with the lock; the head
 * with the first page of events; one statement that checks that no place past the head is held,
 * links the events and moves the head; COMMIT. Through Prisma's client, a round trip a
 * statement (seven), the worker spent 1.6 to 1.95 ms of CPU per approval in bench:approvals'
 * paced phase, where a pass comes every 25 ms or so; on the driver, 0.92 to 1.03 ms.
 */

const LOCK = "latchkey.audit-chainer";
const BATCH = 500;
const POLL_MS = 1_000;
/** How long a wake-up waits for others before its pass (see startChainer). */
const GATHER_MS = 25;
const LOCK_WARN_MS = 60_000;
const log = logger("audit");

/** Since when this process has found the lock held by another session, pass after pass, and when it last said so. */
const lockWait = { since: null as number | null, warnedAt: 0 };
/** Events this process has refused to link and already named in its log (each once, not every second). */
const refused = new Set<bigint>();

/**
 * Links one batch of unchained events; returns how many, or null when another chainer holds the lock.
 *
 * Only events whose own seal checks out under a key of the ring are linked. One whose seal does
 * not match, or names a key the ring does not hold, was not written by this installation as it
 * stands (or is waiting for a key being rolled out): linking it under the current key would
 * launder it, so it stays unchained, is named in the log, and shows in the chaining lag and in
 * verification (lib/audit/unchained.ts); the others are linked past it. Only rows with no place
 * and no link are read: a row that carries a link without a place was not made by the chainer,
 * and would make the database refuse the whole batch.
 */
export async function chainBatch(limit = BATCH, waitMs = 0): Promise<number | null> {
  return db.$transaction(
    async (tx) => {
      if (waitMs > 0) {
        // Queued behind the pass that holds the lock (and ahead of passes that only try it later), for at most waitMs.
        await sqlText(tx, `SET LOCAL lock_timeout = ${Math.ceil(waitMs)}`, []);
        try {
          await sqlRun(tx, sql`SELECT pg_advisory_xact_lock(hashtext(${LOCK}))`);
        } catch (error) {
          // 55P03: lock_not_available, whatever language the server's messages are in.
          if ((error as { code?: string }).code !== "55P03" && !/lock timeout/i.test(String((error as Error).message))) throw error;
          throw new Error(`another audit chainer has held its lock for over ${waitMs / 1000} s: the events committed so far could not all be linked`);
        }
        await sqlText(tx, "SET LOCAL lock_timeout = 0", []);
      } else {
        const lock = await sqlRow<{ locked: boolean }>(tx, sql`SELECT pg_try_advisory_xact_lock(hashtext(${LOCK})) AS locked`);
        if (!lock?.locked) {
          await lockUnavailable(tx);
          return null;
        }
      }
      lockWait.since = null;
      // The head and the first page of unchained events in one round trip: the head's row lock is taken first, and the page read after it.
      // Awaited together, so that when one fails the other's failure is not left unhandled.
      const [[head], firstPage] = await Promise.all([
        sqlAhead<{ lastSeq: bigint; lastHash: string }>(tx, sql`SELECT "lastSeq", "lastHash" FROM "AuditChainHead" WHERE id = 1 FOR UPDATE`),
        sqlRows<EventRow>(tx, unchainedAfter(0n, limit)),
      ]);
      if (!head) throw new Error("The audit chain has no head row: the database was not migrated.");
      const genuine: EventRow[] = [];
      for (let page = firstPage; ; page = await sqlRows<EventRow>(tx, unchainedAfter(page.at(-1)!.id, limit))) {
        for (const row of page) if (genuine.length < limit && sealChecksOut(row)) genuine.push(row);
        if (page.length < limit || genuine.length >= limit) break;
      }
      if (genuine.length === 0) return 0;
      const key = currentKey();
      let seq = head.lastSeq;
      let prev = head.lastHash;
      const links = genuine.map((row) => {
        seq += 1n;
        const hash = linkHash({ prevHash: prev, seq, id: row.id, seal: row.seal!, sealKeyId: row.sealKeyId! }, key);
        const link = { id: row.id.toString(), seq: seq.toString(), prevHash: prev, hash };
        prev = hash;
        return link;
      });
      // One statement: the check that no place past the head is held, the links, and the head's move. When a place is held
      // nothing is written and the holder is named; the head moves only when every link was made. A link count short of the
      // batch still gives those events places without the head, undone only by the throw below and the rollback: this
      // statement must never have its COMMIT sent behind it (sqlRunLast).
      const [result] = await sqlRows<{ heldId: bigint | null; heldSeq: bigint | null; linked: bigint; moved: bigint }>(
        tx,
        sql`
      WITH held AS (
        SELECT id, seq FROM "AuditEvent" WHERE seq > ${head.lastSeq} AND seq <= ${head.lastSeq + BigInt(genuine.length)} ORDER BY seq LIMIT 1),
      linked AS (
        UPDATE "AuditEvent" e SET seq = l.seq, "prevHash" = l."prevHash", hash = l.hash, "chainKeyId" = ${key.id}
        FROM jsonb_to_recordset(${JSON.stringify(links)}::jsonb) AS l(id bigint, seq bigint, "prevHash" text, hash text)
        WHERE e.id = l.id AND e.seq IS NULL AND NOT EXISTS (SELECT 1 FROM held)
        RETURNING e.id),
      moved AS (
        UPDATE "AuditChainHead" SET "lastSeq" = ${seq}, "lastHash" = ${prev}
        WHERE id = 1 AND (SELECT count(*) FROM linked) = ${links.length}
        RETURNING id)
      SELECT (SELECT id FROM held) AS "heldId", (SELECT seq FROM held) AS "heldSeq",
             (SELECT count(*) FROM linked) AS linked, (SELECT count(*) FROM moved) AS moved`,
      );
      if (result?.heldId != null)
        throw new Error(
          `event id ${result.heldId} already holds place ${result.heldSeq}, past the chain's head (${head.lastSeq}), though the chainer never gave it: the chain cannot grow past it. Verification names it as altered.`,
        );
      const linked = Number(result?.linked ?? 0);
      // Only this chainer gives places, under its lock: anything else means the pass must not count (it rolls back).
      if (linked !== links.length || Number(result?.moved ?? 0) !== 1)
        throw new Error(`the audit chainer linked ${linked} of ${links.length} events: another writer gave them places`);
      return links.length;
    },
    // A waiting pass may wait waitMs for the lock before its own work.
    waitMs > 0 ? { maxWait: 10_000, timeout: waitMs + 30_000 } : undefined,
  );
}

/** A page of unchained events after id `after`: only rows with no place and no link (see chainBatch). */
function unchainedAfter(after: bigint, limit: number) {
  return sql`
    SELECT ${EVENT_COLUMNS} FROM "AuditEvent"
    WHERE seq IS NULL AND hash IS NULL AND "prevHash" IS NULL AND "chainKeyId" IS NULL AND id > ${after} ORDER BY id LIMIT ${limit}`;
}

/** Whether an unchained event's seal checks out under the ring; if not, names it in the log (once per process). */
function sealChecksOut(row: EventRow): boolean {
  const check = sealMatches(row);
  if (check === "yes") return true;
  if (!refused.has(row.id)) {
    if (refused.size >= 10_000) refused.delete(refused.values().next().value!);
    refused.add(row.id);
    log.error(
      check === "no"
        ? "an audit event's seal does not match its content (altered, or inserted without the key): it is left out of the chain"
        : "an audit event is sealed under an encryption key this process does not hold: it is left out of the chain until a chainer holding that key links it (if you never configured that key, it was inserted)",
      { eventId: row.id.toString(), action: row.action, sealKeyId: row.sealKeyId },
    );
  }
  return false;
}

/** Another session holds the chainer's lock: normal for a moment (another instance's pass), worth a warning once it lasts a minute. */
async function lockUnavailable(tx: Tx): Promise<void> {
  const now = Date.now();
  lockWait.since ??= now;
  if (now - lockWait.since <= LOCK_WARN_MS || now - lockWait.warnedAt < LOCK_WARN_MS) return;
  lockWait.warnedAt = now;
  const holders = await tx.$queryRaw<{ pid: number; application: string | null; client: string | null }[]>`
    SELECT a.pid, a.application_name AS application, a.client_addr::text AS client FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.objid = (hashtext(${LOCK})::bigint & 4294967295)::oid`;
  log.warn("the audit chainer's lock has been held by another session for over a minute: events wait to be chained until it lets go", {
    seconds: Math.round((now - lockWait.since) / 1000),
    holders,
  });
}

/** Links every event committed so far (pass after pass); returns how many. Stops early when another chainer is at work. */
export async function chainAuditEvents(limit = BATCH): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await chainBatch(limit);
    if (n === null) return total;
    total += n;
    if (n < limit) return total;
  }
}

/**
 * Links every event committed before the call, waiting in the lock's queue while another
 * chainer's pass holds it (that pass may have begun before the latest commits), so the head it
 * leaves covers them all: what the restore marker must hold. Throws, naming why, when the lock
 * stays taken for `waitMs`, or when writers keep every pass full for ten times as long.
 */
export async function chainEverythingCommitted(waitMs = 30_000): Promise<number> {
  const giveUp = Date.now() + 10 * waitMs;
  let total = 0;
  for (;;) {
    const n = (await chainBatch(BATCH, waitMs))!;
    total += n;
    if (n < BATCH) return total;
    if (Date.now() > giveUp)
      throw new Error(
        `audit events kept arriving faster than a pass links them for ${(10 * waitMs) / 1000} s: the events committed so far could not all be linked`,
      );
  }
}

export interface Chainer {
  /** Asks for a pass soon (a wake-up heard, lib/audit/chain-wake.ts): within `gatherMs`, together with the wake-ups that arrive meanwhile. */
  wake: () => void;
  /** How many passes it has finished (those that failed, or found another chainer at work, included). */
  passes: () => number;
  close: () => Promise<void>;
}

/**
 * Runs the chainer in this process (the worker role and `all`): a pass shortly after it is
 * woken, and every second in case a wake-up was lost. Passes never overlap in a process; a
 * wake-up during a pass makes one more pass after it. A wake-up waits `gatherMs` before its
 * pass, so that the commits of that moment are linked by one pass rather than one pass each:
 * under a steady stream of audited changes, a pass per commit cost the worker and PostgreSQL
 * about as much as the changes themselves (eight statements, a lock and the head row each).
 */
export function startChainer(pollMs = POLL_MS, gatherMs = GATHER_MS): Chainer {
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;
  let gathering: NodeJS.Timeout | undefined;
  let finished = 0;
  /** False when the chainer is closed, or a pass is running (it then makes one more when done). */
  const free = (): boolean => {
    if (closed) return false;
    if (running) again = true;
    return !running;
  };
  const pass = (): void => {
    // Once closed, a waiting wake-up is left to close().
    if (closed) return;
    clearTimeout(gathering);
    gathering = undefined;
    if (!free()) return;
    running = chainAuditEvents()
      .then(() => undefined)
      // Never silent: events wait unchained (the lag alert) until a pass succeeds, and the log says why.
      .catch((error: Error) => log.error("a pass of the audit chainer failed: events wait to be linked into the chain; retrying", { error: error.message }))
      .finally(() => {
        running = null;
        finished += 1;
        // Once closed, a wake-up heard during this pass is left to close() (again stays set).
        if (again && !closed) {
          again = false;
          wake();
        }
      });
  };
  const wake = (): void => {
    if (!free() || gathering !== undefined) return;
    gathering = setTimeout(pass, gatherMs);
    gathering.unref();
  };
  const timer = setInterval(pass, pollMs);
  timer.unref();
  pass();
  return {
    wake,
    passes: () => finished,
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
      // A wake-up still waiting (or heard during the last pass) gets its pass before the chainer stops, so what committed just before is not left for the next worker.
      const waiting = gathering !== undefined || again;
      clearTimeout(gathering);
      gathering = undefined;
      if (waiting)
        await chainAuditEvents().catch((error: Error) =>
          log.error("the audit chainer's last pass failed: events wait to be linked by the next chainer", { error: error.message }),
        );
    },
  };
}
