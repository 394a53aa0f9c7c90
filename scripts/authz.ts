/**
 * The lean listener for forward-auth and introspection (lib/authz/listener.ts) in a
 * process of its own, started by scripts/serve.ts when LATCHKEY_AUTHZ_PORT is set: the
 * portal's pages and the worker's jobs never hold up a proxy's decision.
 */
import { logger } from "../lib/log";

const log = logger("authz");
const { startAuthzListener } = await import("../lib/authz/listener");
const { disconnectDb } = await import("../lib/db");
const authz = await startAuthzListener(Number(process.env.LATCHKEY_AUTHZ_PORT), process.env.HOSTNAME ?? "localhost");
process.send?.({ ready: authz.url });

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  // Answers in flight are finished; keep-alive connections are closed once idle.
  await authz.close();
  await disconnectDb();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
// The parent went away without a word (killed): do not linger as an orphan.
process.on("disconnect", () => void stop());
process.on("unhandledRejection", (error) => log.error("unhandled rejection", { error }));
