import { Prisma } from "@prisma/client";
import { keyring, ringKey } from "../credentials/keyring";
import { chainHash, linkHash, sealOf, type ChainedContent } from "./chain";

/**
 * How one audit event's MACs check out (lib/audit/chain.ts), shared by the chain walk
 * (lib/audit/verify.ts), the check of events not yet chained (lib/audit/unchained.ts) and the
 * start-up key check (lib/credentials/reseal.ts). "unknown": made under a key the ring does
 * not hold, which is not by itself tampering.
 */

export const EVENT_COLUMNS = Prisma.sql`"id", "seq", "occurredAt", "actorType"::text AS "actorType", "actorId", "actorEmail", "action", "requestId",
  "fromStatus"::text AS "fromStatus", "toStatus"::text AS "toStatus", "data", "ip", "userAgent", "route",
  "workflowId", "targetId", "environment", "note", "httpRequestId", "prevHash", "hash", "chainKeyId", "seal", "sealKeyId"`;

export type EventRow = ChainedContent & {
  id: bigint;
  seq: bigint | null;
  prevHash: string | null;
  hash: string | null;
  chainKeyId: string | null;
  seal: string | null;
  sealKeyId: string | null;
};

export type Check = "yes" | "no" | "unknown";

/** Whether an event's own seal checks out. */
export function sealMatches(row: EventRow): Check {
  if (!row.seal || !row.sealKeyId) return "no";
  const key = ringKey(row.sealKeyId);
  if (!key) return "unknown";
  return row.seal === sealOf(row, key) ? "yes" : "no";
}

/** Whether a chained event's hash checks out after `prev`: its link and its seal, or for events chained before seals, the hash over its content. */
export function hashMatches(prev: string, row: EventRow): Check {
  if (row.seal !== null) {
    if (row.seq === null || !row.chainKeyId || !row.sealKeyId) return "no";
    const key = ringKey(row.chainKeyId);
    const link = key
      ? row.hash === linkHash({ prevHash: prev, seq: row.seq, id: row.id, seal: row.seal, sealKeyId: row.sealKeyId }, key)
        ? "yes"
        : "no"
      : "unknown";
    const seal = sealMatches(row);
    if (link === "no" || seal === "no") return "no";
    return link === "unknown" || seal === "unknown" ? "unknown" : "yes";
  }
  if (row.chainKeyId) {
    const key = ringKey(row.chainKeyId);
    if (!key) return "unknown";
    return row.hash === chainHash(prev, row, key) ? "yes" : "no";
  }
  return keyring().some((key) => row.hash === chainHash(prev, row, key)) ? "yes" : "unknown";
}

/** The ids of the keys an event names that the ring does not hold ("unnamed" for events chained before keys had ids). */
export function missingKeys(row: EventRow): string[] {
  if (!row.chainKeyId && row.seal === null) return ["unnamed"];
  return [row.chainKeyId, row.sealKeyId].filter((k): k is string => Boolean(k) && !ringKey(k!));
}
