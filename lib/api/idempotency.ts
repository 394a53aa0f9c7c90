import "server-only";
import { createHash } from "node:crypto";
import { Prisma } from "@prisma/client";
import { db, type Tx } from "../db";
import { invalid } from "../errors";
import type { Principal } from "../policy/evaluate";
import { ApiProblem } from "./http";

/**
 * Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) for making a request, so a
 * client that retries a POST after a lost answer does not ask twice. The key is claimed by
 * inserting its row inside the very transaction that makes the request: a concurrent retry's
 * insert waits on the primary key until the first commits, then fails and replays the first
 * answer; if the first rolls back (the request was refused), nothing is remembered and the
 * retry is judged afresh. Keys are per identity and kept 24 hours.
 */

export const KEY_TTL_MS = 24 * 3_600_000;
const KEY_SHAPE = /^[\x21-\x7e]{1,255}$/;

export interface Idempotency {
  userId: string;
  key: string;
  bodyHash: string;
}

/** The Idempotency-Key header of a call, checked; null when the caller sent none. */
export function idempotencyOf(who: Principal, request: Request, body: unknown): Idempotency | null {
  const raw = request.headers.get("idempotency-key");
  if (raw === null) return null;
  // RFC 8941 sf-string: a quoted string is how the draft writes it; a bare token is accepted too.
  const key = raw.trim().replace(/^"(.*)"$/, "$1");
  if (!KEY_SHAPE.test(key))
    throw invalid("The Idempotency-Key header must be 1–255 visible ASCII characters (a UUID is a good choice).", {
      "Idempotency-Key": "Use 1–255 visible ASCII characters.",
    });
  return { userId: who.id, key, bodyHash: createHash("sha256").update(canonicalJson(body)).digest("hex") };
}

/** JSON with object keys sorted, so the same body hashes the same whatever order its keys came in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** Claims the key in the transaction that makes the request (the engine calls this before it inserts). */
export async function claimKey(tx: Tx, claim: Idempotency): Promise<void> {
  await tx.idempotencyKey.deleteMany({ where: { userId: claim.userId, key: claim.key, createdAt: { lt: new Date(Date.now() - KEY_TTL_MS) } } });
  await tx.idempotencyKey.create({ data: { userId: claim.userId, key: claim.key, bodyHash: claim.bodyHash } });
}

/** Ties the claimed key to the request it made, in the same transaction. */
export async function bindKey(tx: Tx, claim: Idempotency, requestId: string): Promise<void> {
  await tx.idempotencyKey.update({ where: { userId_key: { userId: claim.userId, key: claim.key } }, data: { requestId } });
}

/** Keeps the first answer, so a replay returns it as it was. */
export async function rememberAnswer(claim: Idempotency, response: unknown): Promise<void> {
  await db.idempotencyKey.update({ where: { userId_key: { userId: claim.userId, key: claim.key } }, data: { response: response as Prisma.InputJsonValue } });
}

/**
 * What an earlier call with this key made: its request and first answer, or null when the key
 * is new (or expired). The same key with another body is a 422.
 */
export async function earlierUse(claim: Idempotency): Promise<{ requestId: string; response: unknown } | null> {
  const row = await db.idempotencyKey.findUnique({ where: { userId_key: { userId: claim.userId, key: claim.key } } });
  if (!row || row.createdAt.getTime() < Date.now() - KEY_TTL_MS || !row.requestId) return null;
  if (row.bodyHash !== claim.bodyHash) {
    throw new ApiProblem(422, "idempotency_key_reused", "This Idempotency-Key was already used with a different body; use a new key for a new request.");
  }
  return { requestId: row.requestId, response: row.response };
}

export const isKeyTaken = (error: unknown) => error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002";

/** Forgets keys older than a day (the worker's sweep calls this). */
export async function pruneIdempotencyKeys(now = new Date()): Promise<number> {
  return db.idempotencyKey.deleteMany({ where: { createdAt: { lt: new Date(now.getTime() - KEY_TTL_MS) } } }).then((r) => r.count);
}
