import type { TargetDefinition } from "../../policy/schema";
import type { Environment, Unavailable } from "../../workflows/types";
import { missingSettings } from "../adapter";

/**
 * Whether the workflows that use HAProxy can be carried out on a target here. A file of its own,
 * pure, because workflow definitions import it and reach the browser with the form; the
 * adapter would bring its health probe along.
 */
/** Why routes cannot be opened on this target here, or null. */
export function haproxyUnavailable(target: TargetDefinition, env: Environment): Unavailable | null {
  return target.haproxy
    ? missingSettings("The HAProxy integration", ["LATCHKEY_HAPROXY_SOCKET", "LATCHKEY_HAPROXY_MAP"], env)
    : { reason: `${target.title} has no HAProxy backend in the policy.`, missing: [] };
}
