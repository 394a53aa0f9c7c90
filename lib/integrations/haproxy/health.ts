import "server-only";
import { env } from "../../env";
import { probe, unsetSettings, type IntegrationHealth } from "../adapter";
import { runtimeApi } from "./runtime-api";

/** HAProxy answers when its Runtime API shows the routes map. */
export const health: IntegrationHealth = {
  target(target) {
    if (!target.haproxy) return null;
    const { LATCHKEY_HAPROXY_SOCKET: socket, LATCHKEY_HAPROXY_MAP: map } = env();
    return socket && map ? probe(() => runtimeApi(socket).showMap(map)) : unsetSettings("LATCHKEY_HAPROXY_SOCKET or LATCHKEY_HAPROXY_MAP");
  },
};
