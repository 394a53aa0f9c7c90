import { randomUUID } from "node:crypto";
import { exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK } from "jose";
import { recordEvent, SYSTEM, type Actor } from "../audit/record";
import { db, type Tx } from "../db";
import { changeGeneration, changesLive, onChange } from "../db/changes";
import { env } from "../env";
import { seal, unseal } from "./seal";

/**
 * Signing keys for the credentials Latchkey issues. RS256: HAProxy 2.6's `jwt_verify`
 * has no EdDSA, and its ES256 had a signature-format bug fixed only in later backports.
 * The private half is stored sealed under LATCHKEY_ENCRYPTION_KEY.
 */
export const SIGNING_ALG = "RS256";

function encryptionKey(): Buffer {
  return Buffer.from(env().LATCHKEY_ENCRYPTION_KEY, "base64");
}

export interface SigningKeyHandle {
  kid: string;
  privateKey: CryptoKey | Uint8Array;
}

async function createSigningKey(tx: Tx) {
  const kid = randomUUID();
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true, modulusLength: 2048 });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: "sig" };
  const privateJwk = JSON.stringify(await exportJWK(privateKey));
  return tx.signingKey.create({
    data: { kid, alg: SIGNING_ALG, publicJwk, privateKeySealed: seal(encryptionKey(), privateJwk, `signing-key:${kid}`) },
  });
}

const lockKeys = (tx: Tx) => tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('latchkey.signing-key'))`;

const importedKeys = new Map<string, Promise<CryptoKey | Uint8Array>>();

/**
 * The active signing key, created on first use (serialized, so concurrent first uses make
 * one key). The private half is unsealed and imported once per key and process; issuing a
 * credential takes no lock.
 */
export async function activeSigningKey(tx: Tx): Promise<SigningKeyHandle> {
  // Known while changes are heard: a rotation retires this key, which drops it (lib/db/changes.ts).
  if (activeKey && activeKey.until > Date.now() && changesLive()) return { kid: activeKey.kid, privateKey: await importedKeys.get(activeKey.kid)! };
  const generation = changeGeneration();
  const handle = await readActiveSigningKey(tx);
  if (changesLive() && generation === changeGeneration()) activeKey = { kid: handle.kid, until: Date.now() + 60_000 };
  return handle;
}

let activeKey: { kid: string; until: number } | null = null;
onChange((kind) => {
  if (kind === "key" || kind === "*") activeKey = null;
});

async function readActiveSigningKey(tx: Tx): Promise<SigningKeyHandle> {
  const newest = () => tx.signingKey.findFirst({ where: { status: "active" }, orderBy: { createdAt: "desc" } });
  let row = await newest();
  if (!row) {
    await lockKeys(tx);
    row = await newest();
    if (!row) {
      row = await createSigningKey(tx);
      await recordEvent(tx, { actor: SYSTEM, action: "key.created", data: { kid: row.kid, reason: "first credential" } });
    }
  }
  const { kid, alg, privateKeySealed } = row;
  if (!importedKeys.has(kid)) {
    importedKeys.set(kid, importJWK(JSON.parse(unseal(encryptionKey(), privateKeySealed, `signing-key:${kid}`)) as JWK, alg));
  }
  return { kid, privateKey: await importedKeys.get(kid)! };
}

/**
 * Retires the active key and makes a new one, with the audit event, in one transaction.
 * Tokens signed by the retired key keep verifying until they expire: its public half
 * stays in JWKS while any of them is still valid.
 */
export async function rotateSigningKey(actor: Actor, reason: string): Promise<{ kid: string; retired: string[] }> {
  return db.$transaction(async (tx) => {
    await lockKeys(tx);
    const current = await tx.signingKey.findMany({ where: { status: "active" }, select: { kid: true } });
    const retiredAt = new Date();
    await tx.signingKey.updateMany({ where: { status: "active" }, data: { status: "retired", retiredAt } });
    const next = await createSigningKey(tx);
    const retired = current.map((k) => k.kid);
    await recordEvent(tx, { actor, action: "key.rotated", data: { kid: next.kid, retired, reason } });
    return { kid: next.kid, retired };
  });
}

/** Rotates on schedule: when the active key is older than LATCHKEY_KEY_ROTATION_DAYS. Returns the new kid, if any. */
export async function rotateSigningKeyIfDue(now = new Date()): Promise<string | null> {
  const days = env().LATCHKEY_KEY_ROTATION_DAYS;
  if (days === 0) return null;
  const active = await db.signingKey.findFirst({ where: { status: "active" }, orderBy: { createdAt: "desc" } });
  if (!active || now.getTime() - active.createdAt.getTime() < days * 86_400_000) return null;
  const { kid } = await rotateSigningKey(SYSTEM, `scheduled: the key was older than ${days} days`);
  return kid;
}

/** Keys JWKS publishes: the active one, and each retired one until the last token it signed has expired. */
function publishedWhere(now: Date) {
  return { OR: [{ status: "active" as const }, { credentials: { some: { expiresAt: { gt: now } } } }] };
}

export async function listSigningKeys(now = new Date()) {
  const rows = await db.signingKey.findMany({
    orderBy: { createdAt: "desc" },
    select: { kid: true, alg: true, status: true, createdAt: true, retiredAt: true, _count: { select: { credentials: { where: { expiresAt: { gt: now }, revokedAt: null } } } } },
  });
  const published = new Set((await db.signingKey.findMany({ where: publishedWhere(now), select: { kid: true } })).map((k) => k.kid));
  return rows.map(({ _count, ...k }) => ({ ...k, liveCredentials: _count.credentials, published: published.has(k.kid) }));
}

/** The public key a token names by `kid`, if Latchkey still publishes it. */
export async function publishedKey(kid: string, now = new Date()): Promise<{ jwk: JWK; alg: string } | null> {
  const row = await db.signingKey.findFirst({ where: { kid, ...publishedWhere(now) } });
  return row ? { jwk: row.publicJwk as JWK, alg: row.alg } : null;
}

/** Public keys for /.well-known/jwks.json. */
export async function publicJwks(now = new Date()): Promise<{ keys: JWK[] }> {
  const rows = await db.signingKey.findMany({ where: publishedWhere(now), orderBy: { createdAt: "desc" } });
  return { keys: rows.map((r) => r.publicJwk as JWK) };
}

/** The active public key as a `BEGIN PUBLIC KEY` PEM, as HAProxy's jwt_verify wants it. */
export async function publicKeyPem(): Promise<{ kid: string; pem: string }> {
  const newest = () => db.signingKey.findFirst({ where: { status: "active" }, orderBy: { createdAt: "desc" } });
  // Only the public half is needed; a key is created (which needs the encryption key) only if none exists yet.
  const row = (await newest()) ?? (await db.$transaction((tx) => activeSigningKey(tx)), await newest());
  if (!row) throw new Error("No signing key could be created.");
  const key = await importJWK(row.publicJwk as JWK, row.alg, { extractable: true });
  return { kid: row.kid, pem: await exportSPKI(key as CryptoKey) };
}

export function sealToken(token: string, credentialId: string): string {
  return seal(encryptionKey(), token, `credential:${credentialId}`);
}

export function unsealToken(sealed: string, credentialId: string): string {
  return unseal(encryptionKey(), sealed, `credential:${credentialId}`);
}

/** Secrets an integration produced for a request (a database login, ...). */
export function sealSecret(secret: string, requestId: string): string {
  return seal(encryptionKey(), secret, `request-secret:${requestId}`);
}

export function unsealSecret(sealed: string, requestId: string): string {
  return unseal(encryptionKey(), sealed, `request-secret:${requestId}`);
}
