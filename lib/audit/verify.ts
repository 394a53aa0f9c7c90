import type { AuditVerification } from "@prisma/client";
import { db } from "../db";
import { keyring } from "../credentials/keyring";
import { createHash } from "node:crypto";
import { canonical, CHAINED_FIELDS, type ChainedContent } from "./chain";
import { EVENT_COLUMNS as COLUMNS, hashMatches, missingKeys, type EventRow as Row } from "./event-check";
import { checkUnchained } from "./unchained";

/**
 * Walks the audit chain in `seq` order and names the first event that was altered,
 * removed or inserted. Each walk is recorded (the admin page shows the last one; exports
 * carry it in their header), and a chain shorter than one verified before is reported as
 * cut: events were removed from its end.
 *
 * A hash made under an encryption key this installation does not hold cannot be checked:
 * such events are counted as unverifiable, not altered, and the walk goes on checking the
 * links between them (a wrong LATCHKEY_ENCRYPTION_KEY is not tampering). Events chained
 * before keys had ids (before AuditChainHead.keyIdsFromSeq) are checked under each key of the
 * ring; if none opens any of them, they too are unverifiable, but once one of them checks out
 * under a key, a mismatch is an alteration. A later event that names no key is not genuine,
 * nor is one from AuditChainHead.sealsFromSeq on without a seal (lib/audit/chain.ts).
 *
 * Events committed but not yet chained (lib/audit/chainer.ts) are not a fault: the report
 * counts them and gives the oldest one's time, and checks each one's own seal, so an event
 * altered before it was chained is named too. One sealed under a key the ring does not hold
 * is never linked (the chainer cannot check it) and is named as such; a row placed past the
 * chain's end, or linked without a place, is named as altered (lib/audit/unchained.ts).
 */

const BATCH = 5000;

export type ChainOutcome = "intact" | "altered" | "unverifiable";

/** An event with its place in the chain. */
type Chained = Row & { seq: bigint };

/** Whether the chain's last event checks out under a key of the ring (true for an empty chain): the same columns and check as the walk. */
export async function lastEventChecksOut(): Promise<boolean> {
  const [row] = await db.$queryRaw<Row[]>`SELECT ${COLUMNS} FROM "AuditEvent" WHERE seq = (SELECT "lastSeq" FROM "AuditChainHead" WHERE id = 1)`;
  return !row || (row.prevHash !== null && hashMatches(row.prevHash, row) === "yes");
}

export interface ChainReport {
  ok: boolean;
  eventsChecked: number;
  lastSeq: bigint | null;
  firstBadSeq: bigint | null;
  problem: string | null;
  legacyEvents: number;
  /** Of the events recorded before the chain, how many a checkpoint in the chain anchors (lib/audit/anchor.ts). */
  anchoredEvents: number;
  outcome: ChainOutcome;
  /** Events whose hash could not be checked, and the ids of the keys they need ("unnamed" for events chained before keys had ids). */
  uncheckedEvents: number;
  missingKeyIds: string[];
  /** Events committed but not linked into the chain yet, and when the oldest of them was recorded. */
  unchainedEvents: number;
  oldestUnchainedAt: Date | null;
}

export async function walkChain(): Promise<ChainReport> {
  const [head] = await db.$queryRaw<{ lastSeq: bigint; lastHash: string; genesisSeq: bigint; keyIdsFromSeq: bigint; sealsFromSeq: bigint }[]>`
    SELECT "lastSeq", "lastHash", "genesisSeq", "keyIdsFromSeq", "sealsFromSeq" FROM "AuditChainHead" WHERE id = 1`;
  if (!head)
    return {
      ok: false,
      eventsChecked: 0,
      lastSeq: null,
      firstBadSeq: null,
      problem: "The audit chain has no head: the database was not migrated.",
      legacyEvents: 0,
      anchoredEvents: 0,
      outcome: "altered",
      uncheckedEvents: 0,
      missingKeyIds: [],
      unchainedEvents: 0,
      oldestUnchainedAt: null,
    };
  let expectedSeq = 1n;
  let prev = "";
  let checked = 0;
  let legacy = 0;
  let unchecked = 0;
  const missing = new Set<string>();
  // Events chained before keys had ids: whether one checked out under a key of the ring, and the first that did not.
  let unnamedMatched = false;
  let firstUnnamedMiss: Chained | null = null;
  // The checkpoint over the events from before the chain (itself a chained event, checked by this walk).
  const anchor = await latestAnchor();
  const anchoredDigest = createHash("sha256");
  let anchored = 0;
  let unchained: Awaited<ReturnType<typeof checkUnchained>> | null = null;
  const fail = (seq: bigint | null, problem: string): ChainReport => ({
    ok: false,
    eventsChecked: checked,
    lastSeq: expectedSeq - 1n,
    firstBadSeq: seq,
    problem,
    legacyEvents: legacy,
    anchoredEvents: anchored,
    outcome: "altered",
    uncheckedEvents: unchecked,
    missingKeyIds: [...missing],
    unchainedEvents: unchained?.events ?? 0,
    oldestUnchainedAt: unchained?.oldestAt ?? null,
  });

  for (;;) {
    const rows = await db.$queryRaw<Chained[]>`
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
        if (anchor && row.seq <= anchor.toSeq) {
          anchoredDigest.update(legacyLine(row));
          anchored += 1;
        }
      } else {
        if (row.prevHash !== prev)
          return fail(row.seq, `Event ${row.seq} does not follow event ${row.seq - 1n}: an event before it was removed or inserted, or it was altered.`);
        if (!row.chainKeyId && row.seq >= head.keyIdsFromSeq)
          return fail(
            row.seq,
            `Event ${row.seq} (${row.action}) names no key, though every event from ${head.keyIdsFromSeq} on does: it was inserted or was altered.`,
          );
        if (!row.seal && row.seq >= head.sealsFromSeq)
          return fail(
            row.seq,
            `Event ${row.seq} (${row.action}) carries no seal, though every event from ${head.sealsFromSeq} on does: it was inserted or was altered.`,
          );
        const match = hashMatches(prev, row);
        if (match === "no") return fail(row.seq, `Event ${row.seq} (${row.action}) was altered: its content no longer matches its hash.`);
        if (match === "unknown" && !row.chainKeyId && unnamedMatched)
          return fail(row.seq, `Event ${row.seq} (${row.action}) was altered: its content no longer matches its hash.`);
        if (match === "yes" && !row.chainKeyId) unnamedMatched = true;
        if (match === "unknown") {
          unchecked += 1;
          for (const k of missingKeys(row)) missing.add(k);
          if (!row.chainKeyId) firstUnnamedMiss ??= row;
        }
        prev = row.hash ?? "";
      }
      checked += 1;
      expectedSeq += 1n;
    }
    if (rows.length < BATCH) break;
  }

  const last = expectedSeq - 1n;
  if (head.lastSeq !== last) return fail(last + 1n, `Events ${last + 1n} to ${head.lastSeq} were removed from the end of the chain.`);
  // Events appended while this walk ran belong to the next one; anything past the end the head had then must be a later, properly chained event.
  const [beyond] = await db.$queryRaw<Chained[]>`SELECT ${COLUMNS} FROM "AuditEvent" WHERE "seq" = ${last + 1n}`;
  if (beyond && last >= head.genesisSeq && (beyond.prevHash !== prev || !beyond.chainKeyId || hashMatches(prev, beyond) === "no")) {
    return fail(beyond.seq, `Event ${beyond.seq} past the chain's recorded end was inserted: it is not chained to event ${last}.`);
  }
  if (last >= head.genesisSeq && head.lastHash !== prev) return fail(last, `The chain's recorded end does not match event ${last}: it was altered.`);
  const longest = await db.auditVerification.findFirst({ where: { ok: true }, orderBy: { lastSeq: "desc" }, select: { lastSeq: true, finishedAt: true } });
  if (longest?.lastSeq && longest.lastSeq > last) {
    return fail(
      last + 1n,
      `The chain ends at ${last}, but it was verified up to ${longest.lastSeq} on ${longest.finishedAt?.toISOString()}: events were removed from its end.`,
    );
  }
  if (anchor && (anchored !== anchor.events || anchoredDigest.digest("hex") !== anchor.digest)) {
    return fail(
      1n,
      `Events 1 to ${anchor.toSeq}, recorded before the chain, were altered, removed or inserted after they were anchored by event ${anchor.seq}.`,
    );
  }
  if (firstUnnamedMiss && unnamedMatched)
    return fail(firstUnnamedMiss.seq, `Event ${firstUnnamedMiss.seq} (${firstUnnamedMiss.action}) was altered: its content no longer matches its hash.`);
  unchained = await checkUnchained();
  if (unchained.bad) return fail(null, unchained.bad.problem);
  const chainedUnchecked = unchecked;
  const chainedKeys = [...missing];
  unchecked += unchained.unchecked;
  for (const k of unchained.missingKeyIds) missing.add(k);
  if (unchecked > 0) {
    const held = keyring()
      .map((k) => k.id)
      .join(", ");
    const keys = chainedKeys.map((k) => (k === "unnamed" ? "the key used before keys had ids" : k)).join(", ");
    const first = unchained.firstUnchecked;
    const problems = [
      chainedUnchecked > 0 &&
        `${chainedUnchecked} events cannot be checked with the keys in LATCHKEY_ENCRYPTION_KEY (${held}): they were chained under ${keys}. This is not by itself evidence of tampering: put that key in LATCHKEY_ENCRYPTION_KEY_PREVIOUS to check them, and if no key you ever held opens them, treat them as altered (a key id is not protected by the hash).`,
      first &&
        `${unchained.unchecked} events are not chained because their seals cannot be checked, the first event id ${first.id} (${first.action}): sealed under ${first.sealKeyId}, which LATCHKEY_ENCRYPTION_KEY (${held}) does not hold, so the chainer does not link them. If that key is not yours, they were inserted: treat them as altered.`,
    ];
    return {
      ok: false,
      eventsChecked: checked,
      lastSeq: last,
      firstBadSeq: null,
      legacyEvents: legacy,
      anchoredEvents: anchored,
      outcome: "unverifiable",
      uncheckedEvents: unchecked,
      missingKeyIds: [...missing],
      unchainedEvents: unchained.events,
      oldestUnchainedAt: unchained.oldestAt,
      problem: problems.filter(Boolean).join(" "),
    };
  }
  return {
    ok: true,
    eventsChecked: checked,
    lastSeq: last,
    firstBadSeq: null,
    problem: null,
    legacyEvents: legacy,
    anchoredEvents: anchored,
    outcome: "intact",
    uncheckedEvents: 0,
    missingKeyIds: [],
    unchainedEvents: unchained.events,
    oldestUnchainedAt: unchained.oldestAt,
  };
}

/** Walks the chain and records the result. */
export async function verifyAuditChain(trigger: "scheduled" | "manual" | "cli"): Promise<AuditVerification & { legacyEvents: number; outcome: ChainOutcome }> {
  const run = await db.auditVerification.create({ data: { trigger } });
  const report = await walkChain();
  const saved = await db.auditVerification.update({
    where: { id: run.id },
    data: {
      finishedAt: new Date(),
      ok: report.ok,
      eventsChecked: report.eventsChecked,
      lastSeq: report.lastSeq,
      firstBadSeq: report.firstBadSeq,
      problem: report.problem,
      outcome: report.outcome,
      uncheckedEvents: report.uncheckedEvents,
      missingKeyIds: report.missingKeyIds.join(",") || null,
      legacyEvents: report.legacyEvents,
      anchoredEvents: report.anchoredEvents,
      unchainedEvents: report.unchainedEvents,
      oldestUnchainedAt: report.oldestUnchainedAt,
    },
  });
  return { ...saved, legacyEvents: report.legacyEvents, outcome: report.outcome };
}

export const ANCHOR_ACTION = "audit.pre_chain_anchored";

/** One event from before the chain as the anchor's digest covers it: its chained fields, canonical, one line. */
export function legacyLine(row: ChainedContent): string {
  return `${canonical(Object.fromEntries(CHAINED_FIELDS.map((f) => [f, row[f] ?? null])))}\n`;
}

async function latestAnchor(): Promise<{ seq: bigint; toSeq: bigint; events: number; digest: string } | null> {
  const [row] = await db.$queryRaw<{ seq: bigint; data: { toSeq?: string; events?: number; digest?: string } }[]>`
    SELECT seq, data FROM "AuditEvent" WHERE action = ${ANCHOR_ACTION} AND hash IS NOT NULL ORDER BY seq DESC LIMIT 1`;
  if (!row?.data.toSeq || typeof row.data.digest !== "string") return null;
  return { seq: row.seq, toSeq: BigInt(row.data.toSeq), events: Number(row.data.events ?? 0), digest: row.data.digest };
}

/** The digest an anchor records over the events from before the chain, up to `toSeq`, in seq order. */
export async function legacyDigest(toSeq: bigint): Promise<{ digest: string; events: number }> {
  const hash = createHash("sha256");
  let events = 0;
  for (let from = 1n; ;) {
    const rows = await db.$queryRaw<
      Chained[]
    >`SELECT ${COLUMNS} FROM "AuditEvent" WHERE "seq" >= ${from} AND "seq" <= ${toSeq} AND hash IS NULL ORDER BY "seq" LIMIT ${BATCH}`;
    for (const row of rows) hash.update(legacyLine(row));
    events += rows.length;
    if (rows.length < BATCH) break;
    from = rows.at(-1)!.seq + 1n;
  }
  return { digest: hash.digest("hex"), events };
}

export function lastVerification() {
  return db.auditVerification.findFirst({ where: { finishedAt: { not: null } }, orderBy: { startedAt: "desc" } });
}
