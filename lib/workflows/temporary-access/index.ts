import { issueCredential } from "../../credentials/issue";
import type { WorkflowModule } from "../types";
import { temporaryAccessSchema, type TemporaryAccessInput } from "./schema";

/** Temporary access to a service: approval issues a signed credential that expires. */
export const temporaryAccess: WorkflowModule<TemporaryAccessInput> = {
  id: "temporary-access",
  title: "Temporary access",
  description: "Time-boxed read or write access to a service, as a signed credential that expires by itself.",
  category: "Access",
  risk: "medium",
  lasting: true,
  inputSchema: temporaryAccessSchema,
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
};
