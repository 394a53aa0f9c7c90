import type { AuditVerification } from "@prisma/client";
import { Prisma } from "@prisma/client";
import { db } from "../db";
import { chainHash, type ChainedContent } from "./chain";

/**
 * Walks the audit chain in `seq` order and names the first event that was altered,
 * removed or inserted. Each walk is recorded (the admin page shows the last one; exports
 * carry it in their header), and a chain shorter than one verified before is reported as
 * cut: events were removed from its end.
 */

const BATCH = 5000;

const COLUMNS = Prisma.sql`"seq", "occurredAt", "actorType"::text AS "actorType", "actorId", "actorEmail", "action", "requestId",
  "fromStatus"::text AS "fromStatus", "toStatus"::text AS "toStatus", "data", "ip", "userAgent", "route",
  "workflowId", "targetId", "environment", "note", "httpRequestId", "prevHash", "hash"`;

type Row = ChainedContent & { seq: bigint; prevHash: string | null; hash: string | null };

export interface ChainReport {
  ok: boolean;
  eventsChecked: number;
  lastSeq: bigint | null;
  firstBadSeq: bigint | null;
  problem: string | null;
  legacyEvents: number;
}

export async function walkChain(): Promise<ChainReport> {
  const [head] = await db.$queryRaw<{ lastSeq: bigint; lastHash: string; genesisSeq: bigint }[]>`SELECT "lastSeq", "lastHash", "genesisSeq" FROM "AuditChainHead" WHERE id = 1`;
  if (!head) return { ok: false, eventsChecked: 0, lastSeq: null, firstBadSeq: null, problem: "The audit chain has no head: the database was not migrated.", legacyEvents: 0 };
  let expectedSeq = 1n;
  let prev = "";
  let checked = 0;
  let legacy = 0;
  const fail = (seq: bigint, problem: string): ChainReport => ({ ok: false, eventsChecked: checked, lastSeq: expectedSeq - 1n, firstBadSeq: seq, problem, legacyEvents: legacy });

  for (;;) {
    const rows = await db.$queryRaw<Row[]>`
      SELECT ${COLUMNS} FROM "AuditEvent" WHERE "seq" >= ${expectedSeq} AND "seq" <= ${head.lastSeq} ORDER BY "seq" LIMIT ${BATCH}`;
    for (const row of rows) {
      if (row.seq !== expectedSeq) {
        return row.seq > expectedSeq
          ? fail(expectedSeq, `Event ${expectedSeq} is missing: it was removed (the chain jumps from ${expectedSeq - 1n} to ${row.seq}).`)
          : fail(row.seq, `Event ${row.seq} appears twice in the chain: one was inserted.`);
      }
      if (row.seq < head.genesisSeq) {
        // Recorded before the chain existed: it has its place, but no hash to check.
        if (row.hash !== null) return fail(row.seq, `Event ${row.seq} predates the chain but carries a hash: it was inserted or altered.`);
        legacy += 1;
      } else {
        if (row.prevHash !== prev) return fail(row.seq, `Event ${row.seq} does not follow event ${row.seq - 1n}: an event before it was removed or inserted, or it was altered.`);
        if (row.hash !== chainHash(prev, row)) return fail(row.seq, `Event ${row.seq} (${row.action}) was altered: its content no longer matches its hash.`);
        prev = row.hash;
      }
      checked += 1;
      expectedSeq += 1n;
    }
    if (rows.length < BATCH) break;
  }

  const last = expectedSeq - 1n;
  if (head.lastSeq !== last) return fail(last + 1n, `Events ${last + 1n} to ${head.lastSeq} were removed from the end of the chain.`);
  // Events appended while this walk ran belong to the next one; anything past the end the head had then must be a later, properly chained event.
  const [beyond] = await db.$queryRaw<Row[]>`SELECT ${COLUMNS} FROM "AuditEvent" WHERE "seq" = ${last + 1n}`;
  if (beyond && last >= head.genesisSeq && (beyond.prevHash !== prev || beyond.hash !== chainHash(prev, beyond))) {
    return fail(beyond.seq, `Event ${beyond.seq} past the chain's recorded end was inserted: it is not chained to event ${last}.`);
  }
  if (last >= head.genesisSeq && head.lastHash !== prev) return fail(last, `The chain's recorded end does not match event ${last}: it was altered.`);
  const longest = await db.auditVerification.findFirst({ where: { ok: true }, orderBy: { lastSeq: "desc" }, select: { lastSeq: true, finishedAt: true } });
  if (longest?.lastSeq && longest.lastSeq > last) {
    return fail(last + 1n, `The chain ends at ${last}, but it was verified up to ${longest.lastSeq} on ${longest.finishedAt?.toISOString()}: events were removed from its end.`);
  }
  return { ok: true, eventsChecked: checked, lastSeq: last, firstBadSeq: null, problem: null, legacyEvents: legacy };
}

/** Walks the chain and records the result. */
export async function verifyAuditChain(trigger: "scheduled" | "manual" | "cli"): Promise<AuditVerification & { legacyEvents: number }> {
  const run = await db.auditVerification.create({ data: { trigger } });
  const report = await walkChain();
  const saved = await db.auditVerification.update({
    where: { id: run.id },
    data: { finishedAt: new Date(), ok: report.ok, eventsChecked: report.eventsChecked, lastSeq: report.lastSeq, firstBadSeq: report.firstBadSeq, problem: report.problem },
  });
  return { ...saved, legacyEvents: report.legacyEvents };
}

export function lastVerification() {
  return db.auditVerification.findFirst({ where: { finishedAt: { not: null } }, orderBy: { startedAt: "desc" } });
}
