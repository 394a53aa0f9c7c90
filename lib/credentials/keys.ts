import { randomUUID } from "node:crypto";
import { exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK } from "jose";
import { db, type Tx } from "../db";
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

/** The active signing key, created on first use. Serialized so concurrent first uses make one key. */
export async function activeSigningKey(tx: Tx): Promise<SigningKeyHandle> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('latchkey.signing-key'))`;
  let row = await tx.signingKey.findFirst({ where: { status: "active" }, orderBy: { createdAt: "desc" } });
  if (!row) {
    const kid = randomUUID();
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true, modulusLength: 2048 });
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: "sig" };
    const privateJwk = JSON.stringify(await exportJWK(privateKey));
    row = await tx.signingKey.create({
      data: { kid, alg: SIGNING_ALG, publicJwk, privateKeySealed: seal(encryptionKey(), privateJwk, `signing-key:${kid}`) },
    });
  }
  const jwk = JSON.parse(unseal(encryptionKey(), row.privateKeySealed, `signing-key:${row.kid}`)) as JWK;
  return { kid: row.kid, privateKey: await importJWK(jwk, row.alg) };
}

/** Public keys for /.well-known/jwks.json. */
export async function publicJwks(): Promise<{ keys: JWK[] }> {
  const rows = await db.signingKey.findMany({ orderBy: { createdAt: "desc" } });
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
