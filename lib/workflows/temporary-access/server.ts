import { issueCredential } from "../../credentials/issue";
import type { InlineWorkflow } from "../types";
import { temporaryAccessDefinition, type TemporaryAccessInput } from "./definition";

/** Temporary access to a service: approval issues a signed credential that expires, in the approval's transaction. */
export const temporaryAccess = {
  ...temporaryAccessDefinition,
  kind: "inline",
  async execute({ tx, request, requester, target, input, activatedAt, expiresAt }) {
    const { jti, kid } = await issueCredential(tx, {
      requestId: request.id,
      issuedAt: activatedAt,
      expiresAt,
      claims: {
        sub: requester.email,
        uid: requester.id,
        aud: request.targetId,
        target: request.targetId,
        service: target.service,
        environment: target.environment,
        role: input.role,
        request_id: request.id,
      },
    });
    return { audit: { jti, kid, expiresAt: expiresAt.toISOString() } };
  },
  async revoke({ tx, request, at }) {
    await tx.credential.updateMany({ where: { requestId: request.id, revokedAt: null }, data: { revokedAt: at, sealedToken: null } });
  },
} satisfies InlineWorkflow<TemporaryAccessInput, "temporary-access">;
