import { db } from "../../db";
import { env } from "../../env";
import { ExecutionFailure } from "../../workflows/types";
import { haproxyRoutes, type Exclusive, type RouteStore } from "./routes";
import { runtimeApi } from "./runtime-api";

/**
 * The routes store of the HAProxy this portal is configured with (LATCHKEY_HAPROXY_SOCKET,
 * LATCHKEY_HAPROXY_MAP): used by the Open a route workflow, the restore fence and the
 * reconciliation after a reload.
 */
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
