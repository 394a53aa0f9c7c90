import { Prisma } from "@prisma/client";
import { db } from "../db";
import { policy } from "../policy/current";
import { chainAuditEvents } from "./chainer";
import { recordEvent, type Actor } from "./record";
import { ANCHOR_ACTION, legacyDigest } from "./verify";

/**
 * Events recorded before the audit chain existed (seq below AuditChainHead.genesisSeq) carry
 * no hash, and were recorded before events carried their request's workflow, target and
 * environment, so History's filters missed them. This backfill fills those three from the
 * request and the policy (the database allows exactly that change, once, on those events),
 * then anchors them: one chained event records a SHA-256 digest over their content, so from
 * then on any change to them breaks verification, as for chained events. Resumable and
 * idempotent: run it again and it does what is left (npm run audit:anchor, and the worker at
 * start).
 */

export interface AnchorResult {
  legacyEvents: number;
  filled: number;
  anchored: number;
  /** The anchoring event's seq, or null when there was nothing to anchor or it was anchored before. */
  anchorSeq: bigint | null;
}

export async function backfillAndAnchor(actor: Actor): Promise<AnchorResult> {
  const [head] = await db.$queryRaw<{ genesisSeq: bigint }[]>`SELECT "genesisSeq" FROM "AuditChainHead" WHERE id = 1`;
  const toSeq = (head?.genesisSeq ?? 1n) - 1n;
  if (toSeq < 1n) return { legacyEvents: 0, filled: 0, anchored: 0, anchorSeq: null };
  const [already] = await db.$queryRaw<{ seq: bigint }[]>`SELECT seq FROM "AuditEvent" WHERE action = ${ANCHOR_ACTION} AND hash IS NOT NULL LIMIT 1`;
  const legacyEvents = Number((await db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "AuditEvent" WHERE seq <= ${toSeq}`)[0]!.n);
  // Once anchored, filling in more would read as tampering: the anchor fixes them as they are.
  if (already) return { legacyEvents, filled: 0, anchored: 0, anchorSeq: null };

  let filled = await db.$executeRaw`
    UPDATE "AuditEvent" e SET "workflowId" = r."workflowId", "targetId" = r."targetId"
    FROM "AccessRequest" r
    WHERE e."requestId" = r.id AND e.hash IS NULL AND e.seq <= ${toSeq} AND e."workflowId" IS NULL AND e."targetId" IS NULL`;
  const targets = await db.$queryRaw<{ targetId: string }[]>`
    SELECT DISTINCT "targetId" FROM "AuditEvent" WHERE hash IS NULL AND seq <= ${toSeq} AND "targetId" IS NOT NULL AND environment IS NULL`;
  const known = policy().targets;
  for (const { targetId } of targets) {
    const environment = known[targetId]?.environment;
    if (!environment) continue; // A target no longer in the policy: its environment is not known.
    filled += await db.$executeRaw(Prisma.sql`
      UPDATE "AuditEvent" SET environment = ${environment} WHERE hash IS NULL AND seq <= ${toSeq} AND "targetId" = ${targetId} AND environment IS NULL`);
  }

  const anchored = await db.$transaction(async (tx) => {
    // One anchor, however many workers start at once.
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('latchkey.audit-anchor'))`;
    const [raced] = await tx.$queryRaw<{ seq: bigint }[]>`SELECT seq FROM "AuditEvent" WHERE action = ${ANCHOR_ACTION} LIMIT 1`;
    if (raced) return 0;
    const { digest, events } = await legacyDigest(toSeq);
    await recordEvent(tx, { actor, action: ANCHOR_ACTION, data: { fromSeq: "1", toSeq: toSeq.toString(), events, digest, filled } });
    return events;
  });
  // The anchor counts once it has its place in the chain: link it now rather than wait for the chainer.
  if (anchored) await chainAuditEvents();
  const [anchor] = anchored ? await db.$queryRaw<{ seq: bigint }[]>`SELECT seq FROM "AuditEvent" WHERE action = ${ANCHOR_ACTION} LIMIT 1` : [];
  return { legacyEvents, filled, anchored, anchorSeq: anchor?.seq ?? null };
}
