import "server-only";
import { decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from "jose";
import { db } from "../db";
import { tokenIssuer } from "../env";
import type { CredentialClaims } from "./issue";
import { publishedKey, SIGNING_ALG } from "./keys";

export type VerifiedCredential = {
  ok: true;
  jti: string;
  claims: CredentialClaims & JWTPayload;
  requestId: string;
  expiresAt: Date;
  user: { id: string; email: string; groups: string[] };
};

export type CredentialRefusal = { ok: false; reason: string };

/**
 * Checks a credential Latchkey issued, everywhere Latchkey answers for one (introspection,
 * forward-auth): the signature with the algorithm pinned (never taken from the header),
 * a key Latchkey still publishes, issuer, expiry, and then the database: a credential that
 * was revoked, or whose grant is no longer active, is refused at once.
 */
export async function verifyCredential(token: string, now = new Date()): Promise<VerifiedCredential | CredentialRefusal> {
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== SIGNING_ALG) return { ok: false, reason: `The credential is not signed with ${SIGNING_ALG}.` };
    kid = header.kid;
  } catch {
    return { ok: false, reason: "The credential is not a signed token." };
  }
  if (!kid) return { ok: false, reason: "The credential names no signing key." };
  const key = await publishedKey(kid, now);
  if (!key) return { ok: false, reason: "The credential was signed by a key Latchkey does not publish." };

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, await importJWK(key.jwk, SIGNING_ALG), {
      algorithms: [SIGNING_ALG],
      issuer: tokenIssuer(),
      requiredClaims: ["exp", "jti", "sub"],
      currentDate: now,
    }));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_JWT_EXPIRED") return { ok: false, reason: "The credential has expired." };
    if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED") return { ok: false, reason: `The credential failed a claim check: ${(error as Error).message}.` };
    return { ok: false, reason: "The credential's signature does not verify." };
  }

  const credential = await db.credential.findUnique({
    where: { id: payload.jti! },
    select: { revokedAt: true, expiresAt: true, requestId: true, audience: true, request: { select: { status: true, requester: { select: { id: true, email: true, groups: true } } } } },
  });
  if (!credential) return { ok: false, reason: "Latchkey has no record of this credential." };
  if (credential.revokedAt) return { ok: false, reason: "The credential was revoked." };
  if (payload.aud !== credential.audience || payload.target !== credential.audience) {
    return { ok: false, reason: "The credential's audience is not the one Latchkey issued it for." };
  }
  if (credential.request.status !== "active" || credential.expiresAt <= now) {
    return { ok: false, reason: `The grant behind this credential is ${credential.request.status === "active" ? "over" : credential.request.status}.` };
  }
  return {
    ok: true,
    jti: payload.jti!,
    claims: payload as CredentialClaims & JWTPayload,
    requestId: credential.requestId,
    expiresAt: credential.expiresAt,
    user: credential.request.requester,
  };
}
