import { db } from "../db";
import { EVENT_COLUMNS, missingKeys, sealMatches, type EventRow } from "./event-check";

/**
 * Events committed but not yet linked into the chain (lib/audit/chainer.ts): normally none, or
 * those of the last moments. Each carries its own seal from the moment it was written, so an
 * alteration is caught before it is chained; a chainer that is down or falling behind shows as
 * their number and the age of the oldest (verification, Admin → Audit, History, the cluster
 * metrics and the LatchkeyAuditChainingLag alert). The chainer links only events whose seal
 * checks out, so one sealed under a key the ring does not hold waits here, named.
 *
 * Nothing else lies outside the chain: a row with a link but no place, or with a place past the
 * chain's head, was not made by the chainer (any writer can make the one change the database
 * allows, lib/audit/chainer.ts), and is named as altered.
 */

const BATCH = 5000;

export interface UnchainedCheck {
  events: number;
  oldestAt: Date | null;
  /** Sealed under a key the ring does not hold, so not linked; and the first of them. */
  unchecked: number;
  missingKeyIds: string[];
  firstUnchecked: { id: bigint; action: string; sealKeyId: string | null } | null;
  /** The first event that is not genuine, and why. */
  bad: { id: bigint; problem: string } | null;
}

export async function checkUnchained(): Promise<UnchainedCheck> {
  const result: UnchainedCheck = { events: 0, oldestAt: null, unchecked: 0, missingKeyIds: [], firstUnchecked: null, bad: null };
  const missing = new Set<string>();
  // One statement, so the head and the events are read at one moment: the chainer moves both in one transaction.
  const [beyond] = await db.$queryRaw<{ id: bigint; seq: bigint; action: string; lastSeq: bigint }[]>`
    SELECT e.id, e.seq, e.action, h."lastSeq" FROM "AuditEvent" e, "AuditChainHead" h WHERE h.id = 1 AND e.seq > h."lastSeq" ORDER BY e.seq LIMIT 1`;
  if (beyond)
    result.bad = {
      id: beyond.id,
      problem: `Event id ${beyond.id} (${beyond.action}) holds place ${beyond.seq}, past the chain's end (${beyond.lastSeq}): it was given a place outside the chain, so it was altered.`,
    };
  for (let after = 0n; ;) {
    const rows = await db.$queryRaw<EventRow[]>`SELECT ${EVENT_COLUMNS} FROM "AuditEvent" WHERE seq IS NULL AND id > ${after} ORDER BY id LIMIT ${BATCH}`;
    for (const row of rows) {
      result.events += 1;
      if (!result.oldestAt || row.occurredAt! < result.oldestAt) result.oldestAt = row.occurredAt as Date;
      const check = sealMatches(row);
      if (row.hash !== null || row.prevHash !== null || row.chainKeyId !== null) {
        result.bad ??= {
          id: row.id,
          problem: `Event id ${row.id} (${row.action}) carries a link into the chain but has no place in it: the chainer never linked it, so it was inserted or altered.`,
        };
      } else if (check === "unknown") {
        result.unchecked += 1;
        result.firstUnchecked ??= { id: row.id, action: row.action as string, sealKeyId: row.sealKeyId };
        for (const k of missingKeys(row)) missing.add(k);
      } else if (check === "no") {
        result.bad ??= {
          id: row.id,
          problem: row.seal
            ? `Event id ${row.id} (${row.action}), not yet chained, was altered: its content no longer matches its seal.`
            : `Event id ${row.id} (${row.action}), not yet chained, carries no seal: it was inserted.`,
        };
      }
    }
    if (rows.length < BATCH) break;
    after = rows.at(-1)!.id;
  }
  result.missingKeyIds = [...missing];
  return result;
}

/** How many events wait to be chained and how long the oldest has waited (0 when none), for the metrics. */
export async function chainingLag(): Promise<{ events: number; oldestSeconds: number }> {
  const [row] = await db.$queryRaw<{ n: bigint; seconds: number | null }[]>`
    SELECT count(*) AS n, extract(epoch FROM (now() AT TIME ZONE 'UTC') - min("occurredAt"))::float AS seconds FROM "AuditEvent" WHERE seq IS NULL`;
  return { events: Number(row?.n ?? 0), oldestSeconds: Math.max(0, row?.seconds ?? 0) };
}
