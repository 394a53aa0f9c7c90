import { db } from "../db";
import { currentKey } from "../credentials/keyring";
import { logger } from "../log";
import { linkHash } from "./chain";

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
 * order events became visible, not their ids or times; history orders by id (lib/audit/history.ts).
 *
 * One chainer at a time in the cluster: each pass takes a transaction-scoped advisory lock
 * and skips when another holds it; the head row is locked as well. Crash-safe: a pass is one
 * transaction, so a chainer killed mid-way leaves events either linked with the head moved
 * past them or untouched, and the next pass goes on from the head.
 */

const LOCK = "latchkey.audit-chainer";
const BATCH = 500;
const POLL_MS = 1_000;
const log = logger("audit");

/** Links one batch of unchained events; returns how many, or null when another chainer holds the lock. */
export async function chainBatch(limit = BATCH): Promise<number | null> {
  return db.$transaction(async (tx) => {
    const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(hashtext(${LOCK})) AS locked`;
    if (!lock?.locked) return null;
    const [head] = await tx.$queryRaw<{ lastSeq: bigint; lastHash: string }[]>`SELECT "lastSeq", "lastHash" FROM "AuditChainHead" WHERE id = 1 FOR UPDATE`;
    if (!head) throw new Error("The audit chain has no head row: the database was not migrated.");
    const rows = await tx.$queryRaw<{ id: bigint; seal: string | null; sealKeyId: string | null }[]>`
      SELECT id, seal, "sealKeyId" FROM "AuditEvent" WHERE seq IS NULL ORDER BY id LIMIT ${limit}`;
    if (rows.length === 0) return 0;
    const key = currentKey();
    let seq = head.lastSeq;
    let prev = head.lastHash;
    const links = rows.map((row) => {
      seq += 1n;
      // An event without a seal cannot have been written by Latchkey: it is linked all the same (the chain must not stall), and verification names it.
      const hash = linkHash({ prevHash: prev, seq, id: row.id, seal: row.seal ?? "", sealKeyId: row.sealKeyId ?? "" }, key);
      const link = { id: row.id.toString(), seq: seq.toString(), prevHash: prev, hash };
      prev = hash;
      return link;
    });
    const linked = await tx.$executeRaw`
      UPDATE "AuditEvent" e SET seq = l.seq, "prevHash" = l."prevHash", hash = l.hash, "chainKeyId" = ${key.id}
      FROM jsonb_to_recordset(${JSON.stringify(links)}::jsonb) AS l(id bigint, seq bigint, "prevHash" text, hash text)
      WHERE e.id = l.id AND e.seq IS NULL`;
    // Only this chainer gives places, under its lock: anything else means the pass must not count.
    if (linked !== links.length) throw new Error(`the audit chainer linked ${linked} of ${links.length} events: another writer gave them places`);
    await tx.$executeRaw`UPDATE "AuditChainHead" SET "lastSeq" = ${seq}, "lastHash" = ${prev} WHERE id = 1`;
    return links.length;
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

export interface Chainer {
  /** Asks for a pass now (a wake-up heard, lib/audit/chain-wake.ts). */
  wake: () => void;
  close: () => Promise<void>;
}

/**
 * Runs the chainer in this process (the worker role and `all`): a pass whenever woken, and
 * every second in case a wake-up was lost. Passes never overlap in a process; a wake-up
 * during a pass makes one more pass after it.
 */
export function startChainer(pollMs = POLL_MS): Chainer {
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;
  const pass = (): void => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = chainAuditEvents()
      .then(() => undefined)
      .catch((error: Error) => log.error("could not link audit events into the chain; retrying", { error: error.message }))
      .finally(() => {
        running = null;
        if (again) {
          again = false;
          pass();
        }
      });
  };
  const timer = setInterval(pass, pollMs);
  timer.unref();
  pass();
  return {
    wake: pass,
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
