import { proxySettings } from "./auth/trusted-proxy";
import { env } from "./env";
import { policy } from "./policy/current";

/** Imported once at server start (instrumentation.ts): configuration and policy must be valid. */
try {
  env();
  policy();
  if (env().LATCHKEY_AUTH_MODE === "trusted-proxy") proxySettings();
} catch (error) {
  console.error(`[latchkey] cannot start: ${(error as Error).message}`);
  process.exit(1);
}
