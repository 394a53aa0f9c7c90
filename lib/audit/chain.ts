import { createHmac, hkdfSync } from "node:crypto";
import { currentKey, type RingKey } from "../credentials/keyring";

/**
 * The audit chain's cryptography. Every MAC is an HMAC-SHA256 under a key derived from an
 * encryption key of the ring (LATCHKEY_ENCRYPTION_KEY; the event names the key's id, so events
 * made under a previous key still verify while the ring holds it). Whoever can write to the
 * database but does not hold the key cannot alter, remove or insert an event unnoticed.
 *
 * An event gets two MACs (lib/audit/record.ts, lib/audit/chainer.ts):
 * - its seal, when it is written, in the transaction of the change it describes: over its
 *   content, its id and the seal key's id, so an altered event is caught before it is chained;
 * - its link, shortly after commit, from the one chainer: over the previous event's link, its
 *   place in the chain (seq), its id, its seal and both key ids, so a removed, inserted or
 *   reordered event breaks the chain from there on.
 * Events chained before seals existed (no `seal`) carry one MAC, `chainHash`, over the
 * previous hash and their content, and verify as before.
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

/** What an event's seal covers: its content as written (its place in the chain comes later), its id and the key's id. */
export type SealedContent = Omit<ChainedContent, "seq"> & { id: bigint };

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

const PURPOSES = { chain: "latchkey audit chain v1", seal: "latchkey audit seal v1", link: "latchkey audit link v1" } as const;
const derived = new Map<string, Buffer>();
function macKey(key: RingKey, purpose: keyof typeof PURPOSES): Buffer {
  const name = `${purpose}:${key.id}`;
  let k = derived.get(name);
  if (!k) derived.set(name, (k = Buffer.from(hkdfSync("sha256", key.key, Buffer.alloc(0), PURPOSES[purpose], 32))));
  return k;
}

/** The hash of an event chained, before seals existed, after `prevHash`. The HTTP request id is hashed only when set, so events from before it existed still verify. */
export function chainHash(prevHash: string, content: ChainedContent, key: RingKey = currentKey()): string {
  const fields: Record<string, unknown> = Object.fromEntries(CHAINED_FIELDS.map((f) => [f, content[f] ?? null]));
  if (content.httpRequestId) fields.httpRequestId = content.httpRequestId;
  return createHmac("sha256", macKey(key, "chain")).update(prevHash).update("\n").update(canonical(fields)).digest("hex");
}

/** An event's own MAC, made as it is written: its content, id and HTTP request id, under the named key. */
export function sealOf(content: SealedContent, key: RingKey = currentKey()): string {
  const fields: Record<string, unknown> = Object.fromEntries(CHAINED_FIELDS.filter((f) => f !== "seq").map((f) => [f, content[f] ?? null]));
  fields.id = content.id;
  fields.httpRequestId = content.httpRequestId ?? null;
  return createHmac("sha256", macKey(key, "seal")).update(key.id).update("\n").update(canonical(fields)).digest("hex");
}

export interface LinkInput {
  prevHash: string;
  seq: bigint;
  id: bigint;
  seal: string;
  sealKeyId: string;
}

/** An event's link into the chain, made by the chainer under the named key. */
export function linkHash(link: LinkInput, key: RingKey = currentKey()): string {
  return createHmac("sha256", macKey(key, "link"))
    .update([key.id, link.prevHash, link.seq.toString(), link.id.toString(), link.sealKeyId, link.seal].join("\n"))
    .digest("hex");
}
