import { createHmac, hkdfSync } from "node:crypto";
import { currentKey, type RingKey } from "../credentials/keyring";

/**
 * The audit chain: each event's hash is an HMAC-SHA256, under a key derived from the current
 * LATCHKEY_ENCRYPTION_KEY (the event records that key's id, so events chained under a previous
 * key still verify while the ring holds it), over the previous event's hash and the event's content in a
 * canonical form. Whoever can write to the database but does not hold the key cannot
 * alter, remove or insert an event without breaking the chain from that event on.
 */

export const CHAINED_FIELDS = [
  "seq",
  "occurredAt",
  "actorType",
  "actorId",
  "actorEmail",
  "action",
  "requestId",
  "fromStatus",
  "toStatus",
  "data",
  "ip",
  "userAgent",
  "route",
  "workflowId",
  "targetId",
  "environment",
  "note",
] as const;

/** Chained only when set, so that events recorded before the field existed keep their hashes. */
export type ChainedContent = Record<(typeof CHAINED_FIELDS)[number], unknown> & { httpRequestId?: string | null };

/** JSON with object keys sorted at every level, dates as ISO strings and bigints as strings. */
export function canonical(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "bigint") return JSON.stringify(value.toString());
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

const chainKeys = new Map<string, Buffer>();
function chainKey(key: RingKey): Buffer {
  let derived = chainKeys.get(key.id);
  if (!derived) chainKeys.set(key.id, (derived = Buffer.from(hkdfSync("sha256", key.key, Buffer.alloc(0), "latchkey audit chain v1", 32))));
  return derived;
}

/** The hash of an event chained after `prevHash`, under the current key unless another key of the ring is named. The HTTP request id is hashed only when set, so events from before it existed still verify. */
export function chainHash(prevHash: string, content: ChainedContent, key: RingKey = currentKey()): string {
  const fields: Record<string, unknown> = Object.fromEntries(CHAINED_FIELDS.map((f) => [f, content[f] ?? null]));
  if (content.httpRequestId) fields.httpRequestId = content.httpRequestId;
  return createHmac("sha256", chainKey(key)).update(prevHash).update("\n").update(canonical(fields)).digest("hex");
}
