import { env } from "../../env";
import { logger } from "../../log";
import { routeStore } from "./route-store";
import { runtimeApi } from "./runtime-api";

/**
 * HAProxy reloads (the signing-key hook, an operator) read the routes map file while the
 * worker may be opening or closing routes through the old process. After a reload the new
 * process's map is made what the file says: at once when the key hook reloaded it, and
 * every sweep in case someone else did.
 */
const log = logger("haproxy");

function configured() {
  const { LATCHKEY_HAPROXY_SOCKET: socket, LATCHKEY_HAPROXY_MAP: map } = env();
  return socket && map ? runtimeApi(socket) : null;
}

/** The pid of the HAProxy process answering now, or null (not configured, unreachable). */
export async function haproxyProcessId(): Promise<string | null> {
  return (
    (await configured()
      ?.processId()
      .catch(() => null)) ?? null
  );
}

/**
 * Reconciles the running map with the file. With `replacing`, first waits (up to
 * `waitMs`) for a process other than that pid to answer, that is, for the reload to finish.
 */
export async function reconcileRoutes(options: { replacing?: string | null; waitMs?: number } = {}): Promise<void> {
  const runtime = configured();
  if (!runtime) return;
  if (options.replacing) {
    const until = Date.now() + (options.waitMs ?? 15_000);
    while (Date.now() < until && (await runtime.processId().catch(() => options.replacing)) === options.replacing) await new Promise((r) => setTimeout(r, 100));
  }
  try {
    const { added, removed } = await routeStore().reconcile();
    if (added.length || removed.length)
      log.warn("HAProxy's running map differed from the map file; fixed", { added: added.join(","), removed: removed.join(",") });
  } catch (error) {
    log.error("could not reconcile HAProxy's map with the map file", { error: (error as Error).message });
  }
}
