import { issueCredential } from "../../credentials/issue";
import { db } from "../../db";
import { env } from "../../env";
import type { TargetDefinition } from "../../policy/schema";
import { ExecutionFailure, type WorkflowModule } from "../../workflows/types";
import { haproxyRoutes, type Exclusive, type RouteStore } from "./routes";
import { runtimeApi } from "./runtime-api";
import { openRouteSchema, type OpenRouteInput } from "./schema";

let store: { key: string; routes: RouteStore } | undefined;

/**
 * The lock under which instances update one map file: a Postgres advisory lock, held by a
 * transaction of its own, so that it is released even when its holder is killed.
 */
export function mapFileLock(mapFile: string): Exclusive {
  return (work) =>
    db.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`haproxy-map:${mapFile}`}))`;
        return work();
      },
      { maxWait: 15_000, timeout: 30_000 },
    );
}

/** One store per socket and map, so this process serializes its writes to the map file. */
export function routeStore(): RouteStore {
  const { LATCHKEY_HAPROXY_SOCKET: socket, LATCHKEY_HAPROXY_MAP: map } = env();
  if (!socket || !map) throw new ExecutionFailure("LATCHKEY_HAPROXY_SOCKET and LATCHKEY_HAPROXY_MAP must be set to open routes through HAProxy.");
  const key = `${socket}\n${map}`;
  if (store?.key !== key) store = { key, routes: haproxyRoutes(runtimeApi(socket), map, mapFileLock(map)) };
  return store.routes;
}

function backendOf(target: TargetDefinition | undefined): string {
  if (!target?.haproxy) throw new ExecutionFailure(`${target?.title ?? "This target"} has no HAProxy backend in the policy.`);
  return target.haproxy.backend;
}

/**
 * Open a route through the proxy: approval issues a signed credential and adds its `jti`
 * to HAProxy's map for the target's backend; HAProxy verifies the credential itself
 * (deploy/haproxy/haproxy.cfg). Expiry and revocation remove the map entry.
 */
export const openRoute: WorkflowModule<OpenRouteInput> = {
  id: "open-route",
  title: "Open a route through the proxy",
  description: "Reach an internal service through HAProxy with a signed credential that HAProxy verifies; the route closes by itself.",
  category: "Access",
  risk: "medium",
  lasting: true,
  inputSchema: openRouteSchema,
  async execute() {
    throw new Error("open-route runs on the queue (perform), never inline");
  },
  async revoke({ tx, request, at }) {
    await tx.credential.updateMany({ where: { requestId: request.id, revokedAt: null }, data: { revokedAt: at, sealedToken: null } });
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
            claims: {
              sub: requester.email,
              uid: requester.id,
              aud: request.targetId,
              target: request.targetId,
              service: target.service,
              environment: target.environment,
              role: "route",
              request_id: request.id,
            },
          }),
        )
      ).jti;
    await routes.open(jti, backend);
    return { audit: { jti, backend } };
  },
  async undo({ request }) {
    const credential = await db.credential.findUnique({ where: { requestId: request.id } });
    if (credential) await routeStore().close(credential.id);
    await db.credential.updateMany({ where: { requestId: request.id, revokedAt: null }, data: { revokedAt: new Date(), sealedToken: null } });
  },
};
