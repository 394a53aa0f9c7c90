import { randomUUID } from "node:crypto";
import { exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK } from "jose";
import { recordEvent, SYSTEM, type Actor } from "../audit/record";
import { db, type Tx } from "../db";
import { afterCommit } from "../db/after-commit";
import { changeGeneration, changesLive, onChange } from "../db/changes";
import { env } from "../env";
import { seal, unseal } from "./keyring";

/**
 * Signing keys for the credentials Latchkey issues. RS256: HAProxy 2.6's `jwt_verify`
 * has no EdDSA, and its ES256 had a signature-format bug fixed only in later backports.
 * The private half is stored sealed under the current LATCHKEY_ENCRYPTION_KEY (lib/credentials/keyring.ts).
 */
export const SIGNING_ALG = "RS256";

export interface SigningKeyHandle {
  kid: string;
  privateKey: CryptoKey | Uint8Array;
}

/** A new key pair, made before any transaction opens: RSA generation can take a while on a busy host. */
async function newKeyMaterial() {
  const kid = randomUUID();
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true, modulusLength: 2048 });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: "sig" };
  const privateJwk = JSON.stringify(await exportJWK(privateKey));
  return { kid, alg: SIGNING_ALG, publicJwk, privateKeySealed: seal(privateJwk, `signing-key:${kid}`) };
}

type KeyMaterial = Awaited<ReturnType<typeof newKeyMaterial>> & { createdAt?: Date };

async function createSigningKey(tx: Tx, material?: KeyMaterial, next?: { activatesAt: Date }) {
  return tx.signingKey.create({
    data: { ...(material ?? (await newKeyMaterial())), ...(next ? { status: "next" as const, activatesAt: next.activatesAt } : {}) },
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
  const { created, ...handle } = await readActiveSigningKey(tx);
  const remember = () => {
    if (changesLive() && generation === changeGeneration()) activeKey = { kid: handle.kid, until: Date.now() + 60_000 };
  };
  // A key made in this transaction is kept only once the transaction commits: rolled back, it never existed.
  if (!created) remember();
  else afterCommit(tx, remember);
  return handle;
}

let activeKey: { kid: string; until: number } | null = null;
onChange((kind) => {
  if (kind === "key" || kind === "*") activeKey = null;
});

async function readActiveSigningKey(tx: Tx): Promise<SigningKeyHandle & { created: boolean }> {
  const newest = () => tx.signingKey.findFirst({ where: { status: "active" }, orderBy: { createdAt: "desc" } });
  let row = await newest();
  let created = false;
  if (!row) {
    await lockKeys(tx);
    row = await newest();
    if (!row) {
      row = await createSigningKey(tx);
      created = true;
      await recordEvent(tx, { actor: SYSTEM, action: "key.created", data: { kid: row.kid, reason: "first credential" } });
    }
  }
  const { kid, alg, privateKeySealed } = row;
  if (!importedKeys.has(kid)) {
    importedKeys.set(kid, importJWK(JSON.parse(unseal(privateKeySealed, `signing-key:${kid}`, `The private half of signing key ${kid}`)) as JWK, alg));
  }
  return { kid, privateKey: await importedKeys.get(kid)!, created };
}

/**
 * Rotates now: the published next key starts signing if there is one (verifiers that loaded
 * it keep working), otherwise a new key does. The retired key, the new active one and the
 * audit event commit in one transaction. Tokens signed by the retired key keep verifying
 * until they expire: its public half stays in JWKS while any of them is still valid.
 */
export async function rotateSigningKey(actor: Actor, reason: string, now = new Date()): Promise<{ kid: string; retired: string[]; prepublished: boolean }> {
  const material = await newKeyMaterial();
  return db.$transaction(async (tx) => {
    await lockKeys(tx);
    const next = await tx.signingKey.findFirst({ where: { status: "next" }, orderBy: { createdAt: "asc" } });
    const result = await activate(tx, next?.kid ?? (await createSigningKey(tx, material)).kid, now);
    await recordEvent(tx, { actor, action: "key.rotated", data: { ...result, reason, prepublished: Boolean(next) } });
    return { ...result, prepublished: Boolean(next) };
  });
}

/** Makes `kid` the active key and retires the one before it. Runs under the keys lock. */
async function activate(tx: Tx, kid: string, now: Date): Promise<{ kid: string; retired: string[] }> {
  const others = { status: "active" as const, kid: { not: kid } };
  const current = await tx.signingKey.findMany({ where: others, select: { kid: true } });
  await tx.signingKey.updateMany({ where: others, data: { status: "retired", retiredAt: now } });
  await tx.signingKey.update({ where: { kid }, data: { status: "active" } });
  return { kid, retired: current.map((k) => k.kid) };
}

/**
 * Publishes the next key without signing with it: it appears in JWKS and the key files now
 * and signs from `now + LATCHKEY_KEY_PUBLISH_AHEAD`, so file-based verifiers have that long
 * to load it. With no time ahead configured this is an ordinary rotation.
 */
export async function publishNextSigningKey(
  actor: Actor,
  reason: string,
  now = new Date(),
): Promise<{ kid: string; activatesAt: Date } | { kid: string; retired: string[] }> {
  const ahead = env().LATCHKEY_KEY_PUBLISH_AHEAD;
  if (ahead === 0) return rotateSigningKey(actor, reason, now);
  const material = await newKeyMaterial();
  return db.$transaction(async (tx) => {
    await lockKeys(tx);
    const pending = await tx.signingKey.findFirst({ where: { status: "next" } });
    if (pending) return { kid: pending.kid, activatesAt: pending.activatesAt! };
    // Counted from the moment the key is published (making it may have taken a while).
    const publishedAt = new Date(Math.max(now.getTime(), Date.now()));
    const activatesAt = new Date(publishedAt.getTime() + ahead * 1000);
    const { kid } = await createSigningKey(tx, { ...material, createdAt: publishedAt }, { activatesAt });
    await recordEvent(tx, { actor, action: "key.published", data: { kid, activatesAt: activatesAt.toISOString(), reason } });
    return { kid, activatesAt };
  });
}

export type ScheduledRotation = { step: "published"; kid: string; activatesAt: Date } | { step: "activated"; kid: string; retired: string[] };

/**
 * The worker's rotation, one step per call: a published next key whose time has come starts
 * signing; otherwise, once the active key is within LATCHKEY_KEY_PUBLISH_AHEAD of
 * LATCHKEY_KEY_ROTATION_DAYS old, the next key is published. Each step is audited.
 */
export async function rotateSigningKeyIfDue(now = new Date()): Promise<ScheduledRotation | null> {
  const { LATCHKEY_KEY_ROTATION_DAYS: days, LATCHKEY_KEY_PUBLISH_AHEAD: ahead } = env();
  const next = await db.signingKey.findFirst({ where: { status: "next" }, orderBy: { createdAt: "asc" } });
  if (next && next.activatesAt! <= now) {
    const activated = await db.$transaction(async (tx) => {
      await lockKeys(tx);
      // Another worker may have activated it (or an admin rotated) since it was read.
      const still = await tx.signingKey.findFirst({ where: { kid: next.kid, status: "next" } });
      if (!still) return null;
      const result = await activate(tx, next.kid, now);
      const reason = `scheduled: published ${next.createdAt.toISOString()} to sign from ${next.activatesAt!.toISOString()}`;
      await recordEvent(tx, { actor: SYSTEM, action: "key.rotated", data: { ...result, reason, prepublished: true } });
      return result;
    });
    return activated && { step: "activated", ...activated };
  }
  if (days === 0 || next) return null;
  const active = await db.signingKey.findFirst({ where: { status: "active" }, orderBy: { createdAt: "desc" } });
  // A key's age counts from when it started signing, not from its publication.
  const since = active && (active.activatesAt ?? active.createdAt);
  if (!since || now.getTime() - since.getTime() < days * 86_400_000 - ahead * 1000) return null;
  const result = await publishNextSigningKey(SYSTEM, `scheduled: the active key reaches ${days} days of age`, now);
  return "activatesAt" in result ? { step: "published", ...result } : { step: "activated", ...result };
}

/** Keys JWKS publishes: the active one, the next one, and each retired one until the last token it signed has expired. */
function publishedWhere(now: Date) {
  return { OR: [{ status: { in: ["active" as const, "next" as const] } }, { credentials: { some: { expiresAt: { gt: now } } } }] };
}

export async function listSigningKeys(now = new Date()) {
  const rows = await db.signingKey.findMany({
    orderBy: { createdAt: "desc" },
    select: {
      kid: true,
      alg: true,
      status: true,
      createdAt: true,
      activatesAt: true,
      retiredAt: true,
      _count: { select: { credentials: { where: { expiresAt: { gt: now }, revokedAt: null } } } },
    },
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

export interface PublishedKeyPem {
  kid: string;
  status: "next" | "active" | "retired";
  pem: string;
}

/**
 * Every published key as a `BEGIN PUBLIC KEY` PEM, the form HAProxy's jwt_verify wants,
 * oldest first: a key keeps its place when it starts signing, so activation alone changes
 * no key file.
 */
export async function publishedKeyPems(now = new Date()): Promise<PublishedKeyPem[]> {
  // Only public halves are needed; a key is created (which needs the encryption key) only if none exists yet.
  if (!(await db.signingKey.findFirst({ where: { status: "active" } }))) {
    const material = await newKeyMaterial();
    await db.$transaction(async (tx) => {
      await lockKeys(tx);
      if (await tx.signingKey.findFirst({ where: { status: "active" } })) return;
      const { kid } = await createSigningKey(tx, material);
      await recordEvent(tx, { actor: SYSTEM, action: "key.created", data: { kid, reason: "first key, for verifiers" } });
    });
  }
  const rows = await db.signingKey.findMany({ where: publishedWhere(now), orderBy: { createdAt: "asc" } });
  return Promise.all(
    rows.map(async (row) => {
      const key = await importJWK(row.publicJwk as JWK, row.alg, { extractable: true });
      return { kid: row.kid, status: row.status, pem: `${(await exportSPKI(key as CryptoKey)).trimEnd()}\n` };
    }),
  );
}

export function sealToken(token: string, credentialId: string): string {
  return seal(token, `credential:${credentialId}`);
}

export function unsealToken(sealed: string, credentialId: string): string {
  return unseal(sealed, `credential:${credentialId}`, `Credential ${credentialId}`);
}

/** Secrets an integration produced for a request (a database login, ...). */
export function sealSecret(secret: string, requestId: string): string {
  return seal(secret, `request-secret:${requestId}`);
}

export function unsealSecret(sealed: string, requestId: string): string {
  return unseal(sealed, `request-secret:${requestId}`, `The secret of request ${requestId}`);
}
