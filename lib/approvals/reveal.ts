import { actorOf, recordEvent } from "../audit/record";
import { unsealSecret, unsealToken } from "../credentials/keys";
import { conflict, forbidden } from "../errors";
import type { Principal } from "../policy/evaluate";
import { lockRequest } from "./transition";
import { inTransaction } from "./lifecycle";

/** Handing a credential to its owner, once. */

/**
 * Hands the signed credential to its owner, once. The sealed token is cleared in the same
 * statement that reads it, so two tabs racing cannot both receive it.
 */
export async function revealCredential(who: Principal, requestId: string): Promise<{ token: string; expiresAt: Date }> {
  return inTransaction(async (tx) => {
    const status = await lockRequest(tx, requestId);
    const request = await tx.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    if (request.requesterId !== who.id) throw forbidden("Only the requester can see this credential.");
    if (status !== "active") throw conflict(`This request is ${status}; there is no credential to show.`);
    const rows = await tx.$queryRaw<{ id: string; sealedToken: string; expiresAt: Date }[]>`
      WITH taken AS (
        SELECT id, "sealedToken" FROM "Credential"
        WHERE "requestId" = ${requestId} AND "sealedToken" IS NOT NULL AND "revokedAt" IS NULL
        FOR UPDATE)
      UPDATE "Credential" c SET "sealedToken" = NULL, "revealedAt" = now()
      FROM taken WHERE c.id = taken.id
      RETURNING c.id, taken."sealedToken", c."expiresAt"`;
    const row = rows[0];
    if (row) {
      await recordEvent(tx, { actor: actorOf(who), action: "credential.revealed", requestId, data: { jti: row.id } });
      return { token: unsealToken(row.sealedToken, row.id), expiresAt: row.expiresAt };
    }
    const secrets = await tx.$queryRaw<{ sealedSecret: string }[]>`
      WITH taken AS (SELECT id, "sealedSecret" FROM "AccessRequest" WHERE id = ${requestId} AND "sealedSecret" IS NOT NULL)
      UPDATE "AccessRequest" r SET "sealedSecret" = NULL, "secretRevealedAt" = now()
      FROM taken WHERE r.id = taken.id
      RETURNING taken."sealedSecret"`;
    if (!secrets[0]) throw conflict("This credential was already shown once and cannot be shown again. Revoke it and request a new one if it was lost.");
    await recordEvent(tx, { actor: actorOf(who), action: "credential.revealed", requestId, data: { kind: "integration secret" } });
    return { token: unsealSecret(secrets[0].sealedSecret, requestId), expiresAt: request.expiresAt! };
  });
}
