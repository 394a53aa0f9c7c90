import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import type { Tx } from "../db";
import { sql, sqlSend } from "../db/sql";
import { credentialIssuer } from "./issuer";
import { activeSigningKey, SIGNING_ALG, sealToken } from "./keys";

export interface CredentialClaims {
  sub: string;
  uid: string;
  aud: string;
  target: string;
  service: string;
  environment: string;
  role: string;
  request_id: string;
}

/**
 * Signs a short-lived credential and stores its metadata. The token itself is kept sealed
 * only until its owner reveals it once (lib/approvals/reveal.ts); Latchkey never shows it again.
 */
export async function issueCredential(
  tx: Tx,
  input: { requestId: string; claims: CredentialClaims; issuedAt: Date; expiresAt: Date },
): Promise<{ jti: string; kid: string }> {
  const key = await activeSigningKey(tx);
  const issuer = await credentialIssuer(tx);
  const jti = randomUUID();
  const { aud, ...rest } = input.claims;
  const token = await new SignJWT({ ...rest })
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: "JWT" })
    .setIssuer(issuer)
    .setAudience(aud)
    .setIssuedAt(Math.floor(input.issuedAt.getTime() / 1000))
    .setNotBefore(Math.floor(input.issuedAt.getTime() / 1000))
    .setExpirationTime(Math.floor(input.expiresAt.getTime() / 1000))
    .setJti(jti)
    .sign(key.privateKey);
  // Through the driver: issuing is on the approval's hot path (lib/db/sql.ts). Sent with the transaction's next statement (sqlSend).
  await sqlSend(
    tx,
    sql`INSERT INTO "Credential" (id, "requestId", kid, subject, audience, claims, "issuedAt", "expiresAt", "sealedToken")
        VALUES (${jti}, ${input.requestId}, ${key.kid}, ${input.claims.sub}, ${aud}, ${JSON.stringify(input.claims)}::jsonb, ${input.issuedAt}, ${input.expiresAt}, ${sealToken(token, jti)})`,
  );
  return { jti, kid: key.kid };
}

/** What a grant's credential says: who holds it, for which target, service and environment, in which role, for which request. */
export function grantClaims(
  request: { id: string; targetId: string },
  requester: { id: string; email: string },
  target: { service: string; environment: string },
  role: string,
): CredentialClaims {
  return {
    sub: requester.email,
    uid: requester.id,
    aud: request.targetId,
    target: request.targetId,
    service: target.service,
    environment: target.environment,
    role,
    request_id: request.id,
  };
}

/** Ends a request's credentials (refused from now on) and forgets the sealed token if it was never revealed. */
export async function revokeCredentials(tx: Pick<Tx, "credential">, requestId: string, at: Date): Promise<void> {
  await tx.credential.updateMany({ where: { requestId, revokedAt: null }, data: { revokedAt: at, sealedToken: null } });
}
