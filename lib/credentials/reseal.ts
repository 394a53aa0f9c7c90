import { Prisma } from "@prisma/client";
import { recordEvent, type Actor } from "../audit/record";
import { lastEventChecksOut } from "../audit/verify";
import { db } from "../db";
import { currentKey, KEY_VARIABLE, keyring, KeyUnavailableError, ringKey, seal, unseal } from "./keyring";

/**
 * Moving sealed data to the current encryption key, and the check every writer of sealed
 * data runs first. Re-sealing goes in small batches, each batch and its audit event one
 * transaction, and only touches values not yet under the current key: stopped at any
 * point, it resumes where it left off (npm run keys:reseal, and the worker each sweep).
 *
 * The check is what keeps a mistyped or new-only key from damaging an installation: if the
 * data already there names a key the ring does not hold (or no key of the ring opens it),
 * nothing that would seal or chain under the new key may run.
 */

/** Each table holding sealed values: its column and the context each value is bound to. */
const SEALED = [
  { kind: "signing keys", table: "SigningKey", id: "kid", column: "privateKeySealed", context: (id: string) => `signing-key:${id}` },
  { kind: "credentials", table: "Credential", id: "id", column: "sealedToken", context: (id: string) => `credential:${id}` },
  { kind: "request secrets", table: "AccessRequest", id: "id", column: "sealedSecret", context: (id: string) => `request-secret:${id}` },
] as const;

export interface SealedInventory {
  /** Per key id (null: sealed before keys had ids), how many values each table holds under it. */
  byKey: { keyId: string | null; kind: string; count: number }[];
  /** The key the last chained audit event was chained under (null: before keys had ids), if any event is chained. */
  chainKeyId: string | null | undefined;
}

export async function sealedInventory(): Promise<SealedInventory> {
  const byKey: SealedInventory["byKey"] = [];
  for (const s of SEALED) {
    const rows = await db.$queryRaw<{ keyId: string | null; n: bigint }[]>(Prisma.sql`
      SELECT CASE WHEN split_part(${Prisma.raw(`"${s.column}"`)}, '.', 1) = 'v2' THEN split_part(${Prisma.raw(`"${s.column}"`)}, '.', 2) END AS "keyId", count(*) AS n
      FROM ${Prisma.raw(`"${s.table}"`)} WHERE ${Prisma.raw(`"${s.column}"`)} IS NOT NULL GROUP BY 1`);
    for (const r of rows) byKey.push({ keyId: r.keyId, kind: s.kind, count: Number(r.n) });
  }
  const [last] = await db.$queryRaw<{ chainKeyId: string | null }[]>`
    SELECT e."chainKeyId" FROM "AuditChainHead" h JOIN "AuditEvent" e ON e.seq = h."lastSeq" WHERE e.hash IS NOT NULL`;
  return { byKey, chainKeyId: last ? last.chainKeyId : undefined };
}

/**
 * Why the keys in LATCHKEY_ENCRYPTION_KEY cannot open what the database holds, or null when
 * they can. Checks every key id named, one value of each kind sealed before keys had ids,
 * and the last chained audit event.
 */
export async function encryptionKeyProblem(): Promise<string | null> {
  const inventory = await sealedInventory();
  const missing = new Map<string, string[]>();
  for (const { keyId, kind, count } of inventory.byKey) if (keyId && !ringKey(keyId)) missing.set(keyId, [...(missing.get(keyId) ?? []), `${count} ${kind}`]);
  if (inventory.chainKeyId && !ringKey(inventory.chainKeyId))
    missing.set(inventory.chainKeyId, [...(missing.get(inventory.chainKeyId) ?? []), "the audit chain"]);
  const held = keyring()
    .map((k) => k.id)
    .join(", ");
  if (missing.size > 0) {
    const list = [...missing].map(([id, what]) => `${id} (${what.join(", ")})`).join("; ");
    return `${KEY_VARIABLE} (holding ${held}) cannot open what the database holds: it was sealed under ${list}. Start with the key that sealed it (first in ${KEY_VARIABLE}), or keep it after the new one (comma-separated) or in ${KEY_VARIABLE}_PREVIOUS, then run npm run keys:reseal.`;
  }
  for (const s of SEALED) {
    if (!inventory.byKey.some((b) => b.kind === s.kind && b.keyId === null)) continue;
    const [row] = await db.$queryRaw<{ id: string; sealed: string }[]>(Prisma.sql`
      SELECT ${Prisma.raw(`"${s.id}"`)} AS id, ${Prisma.raw(`"${s.column}"`)} AS sealed FROM ${Prisma.raw(`"${s.table}"`)}
      WHERE ${Prisma.raw(`"${s.column}"`)} LIKE 'v1.%' LIMIT 1`);
    if (!row) continue;
    try {
      unseal(row.sealed, s.context(row.id));
    } catch (error) {
      if (error instanceof KeyUnavailableError)
        return `${KEY_VARIABLE} (holding ${held}) cannot open the ${s.kind} sealed before keys had ids. Start with the key that sealed them (first in ${KEY_VARIABLE}), or keep it in ${KEY_VARIABLE}_PREVIOUS, then run npm run keys:reseal.`;
      throw error;
    }
  }
  if (inventory.chainKeyId === null && !(await lastEventChecksOut())) {
    return `${KEY_VARIABLE} (holding ${held}) cannot check the audit chain: its last event was chained under another key, before keys had ids. Start with that key first in ${KEY_VARIABLE}, or keep it in ${KEY_VARIABLE}_PREVIOUS.`;
  }
  return null;
}

/** Refuses (throws, naming the variable and the keys) when the ring cannot open what is already there. */
export async function assertEncryptionKeyOpensData(): Promise<void> {
  const problem = await encryptionKeyProblem();
  if (problem) throw new Error(`Refusing to write sealed data: ${problem}`);
}

export interface ResealStep {
  keyId: string;
  resealed: Record<(typeof SEALED)[number]["kind"], number>;
}

/**
 * Re-seals up to `batch` values of each kind that are not under the current key, in one
 * transaction with its audit event (none when there was nothing to do). Rows another
 * re-sealer holds are skipped, so several can run at once.
 */
export async function resealStep(actor: Actor, batch = 200): Promise<ResealStep> {
  const key = currentKey();
  const prefix = `v2.${key.id}.%`;
  return db.$transaction(async (tx) => {
    const resealed = { "signing keys": 0, credentials: 0, "request secrets": 0 };
    for (const s of SEALED) {
      const col = Prisma.raw(`"${s.column}"`);
      const rows = await tx.$queryRaw<{ id: string; sealed: string }[]>(Prisma.sql`
        SELECT ${Prisma.raw(`"${s.id}"`)} AS id, ${col} AS sealed FROM ${Prisma.raw(`"${s.table}"`)}
        WHERE ${col} IS NOT NULL AND ${col} NOT LIKE ${prefix} LIMIT ${batch} FOR UPDATE SKIP LOCKED`);
      for (const row of rows) {
        const context = s.context(row.id);
        const fresh = seal(unseal(row.sealed, context, `${s.kind} ${row.id}`), context, key);
        await tx.$executeRaw(Prisma.sql`UPDATE ${Prisma.raw(`"${s.table}"`)} SET ${col} = ${fresh} WHERE ${Prisma.raw(`"${s.id}"`)} = ${row.id}`);
      }
      resealed[s.kind] = rows.length;
    }
    if (Object.values(resealed).some((n) => n > 0)) await recordEvent(tx, { actor, action: "encryption_key.resealed", data: { keyId: key.id, ...resealed } });
    return { keyId: key.id, resealed };
  });
}

/** Re-seals everything, batch after batch, after checking that the ring opens it all. */
export async function resealAll(actor: Actor, batch = 200, onStep?: (step: ResealStep) => void): Promise<{ keyId: string; total: number }> {
  await assertEncryptionKeyOpensData();
  let total = 0;
  for (;;) {
    const step = await resealStep(actor, batch);
    const n = Object.values(step.resealed).reduce((a, b) => a + b, 0);
    if (n === 0) return { keyId: step.keyId, total };
    total += n;
    onStep?.(step);
  }
}

/** How many sealed values are not under the current key yet. */
export async function valuesToReseal(): Promise<number> {
  const current = currentKey().id;
  return (await sealedInventory()).byKey.filter((b) => b.keyId !== current).reduce((a, b) => a + b.count, 0);
}

let lastCheck: { at: number; problem: string | null } | undefined;

/**
 * encryptionKeyProblem for readiness probes: counting sealed values by key scans their tables,
 * so a result is kept for a minute (a key is only changed by restarting with another).
 */
export async function encryptionKeyCheck(now = Date.now()): Promise<string | null> {
  if (!lastCheck || now - lastCheck.at > 60_000) lastCheck = { at: now, problem: await encryptionKeyProblem() };
  return lastCheck.problem;
}
