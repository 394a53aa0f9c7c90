import { grantClaims, issueCredential, revokeCredentials } from "../../credentials/issue";
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
      claims: grantClaims(request, requester, target, input.role),
    });
    return { audit: { jti, kid, expiresAt: expiresAt.toISOString() } };
  },
  async revoke({ tx, request, at }) {
    await revokeCredentials(tx, request.id, at);
  },
} satisfies InlineWorkflow<TemporaryAccessInput, "temporary-access">;
