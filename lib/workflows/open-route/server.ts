import { grantClaims, issueCredential, revokeCredentials } from "../../credentials/issue";
import { db } from "../../db";
import { routeStore } from "../../integrations/haproxy/route-store";
import type { TargetDefinition } from "../../policy/schema";
import { ExecutionFailure, type QueuedWorkflow } from "../types";
import { openRouteDefinition, type OpenRouteInput } from "./definition";

function backendOf(target: TargetDefinition | undefined): string {
  if (!target?.haproxy) throw new ExecutionFailure(`${target?.title ?? "This target"} has no HAProxy backend in the policy.`);
  return target.haproxy.backend;
}

/**
 * Open a route through the proxy: approval issues a signed credential and adds its `jti`
 * to HAProxy's map for the target's backend; HAProxy verifies the credential itself
 * (deploy/haproxy/haproxy.cfg). Expiry and revocation remove the map entry.
 */
export const openRoute = {
  ...openRouteDefinition,
  kind: "queued",
  async revoke({ tx, request, at }) {
    await revokeCredentials(tx, request.id, at);
  },
  async perform({ request, requester, target, activatedAt, expiresAt }) {
    const backend = backendOf(target);
    const routes = routeStore();
    // One credential per request: a retried attempt reuses the one it already issued.
    const existing = await db.credential.findUnique({ where: { requestId: request.id } });
    const jti =
      existing?.id ??
      (
        await db.$transaction((tx) =>
          issueCredential(tx, {
            requestId: request.id,
            issuedAt: activatedAt,
            expiresAt,
            claims: grantClaims(request, requester, target, "route"),
          }),
        )
      ).jti;
    await routes.open(jti, backend);
    return { audit: { jti, backend } };
  },
  async undo({ request }) {
    const credential = await db.credential.findUnique({ where: { requestId: request.id } });
    if (credential) await routeStore().close(credential.id);
    await revokeCredentials(db, request.id, new Date());
  },
} satisfies QueuedWorkflow<OpenRouteInput, "open-route">;
