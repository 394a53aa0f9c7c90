import "server-only";
import { decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from "jose";
import { db } from "../db";
import { changeGeneration, changesLive, keepIfUnchanged, onChange } from "../db/changes";
import { credentialIssuer } from "../credentials/issuer";
import type { CredentialClaims } from "../credentials/issue";
import { publishedKey, SIGNING_ALG } from "../credentials/keys";

export type VerifiedCredential = {
  ok: true;
  jti: string;
  kid: string;
  claims: CredentialClaims & JWTPayload;
  requestId: string;
  expiresAt: Date;
  user: { id: string; email: string; groups: string[] };
};

export type CredentialRefusal = { ok: false; reason: string };

/**
 * Public keys by kid, imported once and re-checked against what Latchkey publishes every
 * few seconds. A key leaves JWKS only once every token it signed has expired, so a short
 * cache never accepts a token the database would refuse: revocation is checked per token.
 */
const keyCache = new Map<string, { key: CryptoKey | Uint8Array; until: number }>();

async function verificationKey(kid: string, now: Date): Promise<CryptoKey | Uint8Array | null> {
  // Only answers about the present are cached (a check "as of" another time asks the database).
  const present = Math.abs(now.getTime() - Date.now()) < 1000;
  const cached = present ? keyCache.get(kid) : undefined;
  if (cached && cached.until > Date.now()) return cached.key;
  const published = await publishedKey(kid, now);
  if (!published) {
    keyCache.delete(kid);
    return null;
  }
  const key = await importJWK(published.jwk, SIGNING_ALG);
  // Unknown kids are never cached, so made-up ones cannot grow this map.
  if (present) keyCache.set(kid, { key, until: Date.now() + 5_000 });
  return key;
}

/**
 * Answers already given for credentials of active grants, by token, so that a proxy asking
 * again and again about the same credential costs no signature check and no query. An
 * answer is kept only while changes are heard (lib/db/changes.ts): the revocation of the
 * credential, the end of its grant, a change to its holder or its key removes it as the
 * change commits. It is never used past the credential's expiry, nor kept over 10 seconds.
 */
const CACHE_MS = 10_000;
const REFRESH_MS = 2_000;
const answers = new Map<string, { value: VerifiedCredential; until: number }>();
const reading = new Map<string, Promise<VerifiedCredential | CredentialRefusal>>();

onChange((kind, id) => {
  // A read begun before this change may answer from before it: callers from now on start their own.
  if (kind !== "token") reading.clear();
  if (kind === "*") return answers.clear();
  for (const [token, { value: answer }] of answers) {
    const stale =
      (kind === "credential" && answer.jti === id) ||
      (kind === "request" && answer.requestId === id) ||
      (kind === "user" && answer.user.id === id) ||
      (kind === "key" && answer.kid === id);
    if (stale) answers.delete(token);
  }
});

/**
 * Checks a credential Latchkey issued, everywhere Latchkey answers for one (introspection,
 * forward-auth): the signature with the algorithm pinned (never taken from the header),
 * a key Latchkey still publishes, issuer, expiry, and then the database: a credential that
 * was revoked, or whose grant is no longer active, is refused at once.
 */
export async function verifyCredential(token: string, now = new Date()): Promise<VerifiedCredential | CredentialRefusal> {
  // Only answers about the present are cached (a check "as of" another time asks the database).
  const present = Math.abs(now.getTime() - Date.now()) < 1000;
  if (!present || !changesLive()) return verifyAgainstDatabase(token, now);
  const hit = answers.get(token);
  if (hit && hit.until > Date.now() && hit.value.expiresAt > now && (hit.value.claims.exp ?? 0) * 1000 > now.getTime()) {
    // Read again in the background shortly before the answer ages out, so busy callers never all miss at once.
    if (hit.until - Date.now() < REFRESH_MS) void refresh(token).catch(() => undefined);
    return hit.value;
  }
  return refresh(token);
}

/** Reads a credential's answer from the database and keeps it; one read at a time per token. */
function refresh(token: string): Promise<VerifiedCredential | CredentialRefusal> {
  let pending = reading.get(token);
  if (pending) return pending;
  const generation = changeGeneration();
  pending = verifyAgainstDatabase(token, new Date())
    .then((answer) => {
      if (answer.ok) keepIfUnchanged(answers, token, answer, generation, CACHE_MS);
      else answers.delete(token);
      return answer;
    })
    .finally(() => {
      if (reading.get(token) === pending) reading.delete(token);
    });
  reading.set(token, pending);
  return pending;
}

async function verifyAgainstDatabase(token: string, now: Date): Promise<VerifiedCredential | CredentialRefusal> {
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== SIGNING_ALG) return { ok: false, reason: `The credential is not signed with ${SIGNING_ALG}.` };
    kid = header.kid;
  } catch {
    return { ok: false, reason: "The credential is not a signed token." };
  }
  if (!kid) return { ok: false, reason: "The credential names no signing key." };
  const key = await verificationKey(kid, now);
  if (!key) return { ok: false, reason: "The credential was signed by a key Latchkey does not publish." };

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [SIGNING_ALG],
      issuer: await credentialIssuer(),
      requiredClaims: ["exp", "jti", "sub"],
      currentDate: now,
    }));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_JWT_EXPIRED") return { ok: false, reason: "The credential has expired." };
    if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED") return { ok: false, reason: `The credential failed a claim check: ${(error as Error).message}.` };
    return { ok: false, reason: "The credential's signature does not verify." };
  }

  // Every decision reads the credential's row: a revocation counts from the moment it commits.
  const [row] = await db.$queryRaw<
    { revokedAt: Date | null; expiresAt: Date; requestId: string; audience: string; status: string; userId: string; email: string; groups: string[] }[]
  >`
    SELECT c."revokedAt", c."expiresAt", c."requestId", c.audience, r.status::text AS status, u.id AS "userId", u.email, u.groups
    FROM "Credential" c JOIN "AccessRequest" r ON r.id = c."requestId" JOIN "User" u ON u.id = r."requesterId"
    WHERE c.id = ${payload.jti!}`;
  if (!row) return { ok: false, reason: "Latchkey has no record of this credential." };
  const credential = { ...row, request: { status: row.status, requester: { id: row.userId, email: row.email, groups: row.groups } } };
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
    kid,
    claims: payload as CredentialClaims & JWTPayload,
    requestId: credential.requestId,
    expiresAt: credential.expiresAt,
    user: credential.request.requester,
  };
}
