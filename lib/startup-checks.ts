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

/**
 * Then LATCHKEY_ENCRYPTION_KEY must open what the database holds: a portal that started
 * with a key that opens nothing would chain new audit events and seal new secrets under it,
 * and report ready while every credential sealed before is lost. A database that does not
 * answer yet does not stop the start (the portal recovers when it comes back; /api/ready
 * checks the key too).
 */
export async function checkEncryptionKeyAtStart(): Promise<void> {
  const { encryptionKeyProblem } = await import("./credentials/reseal");
  let problem: string | null;
  try {
    problem = await encryptionKeyProblem();
  } catch (error) {
    // Unreachable or not migrated yet: /api/ready reports it, and the check runs again there.
    console.warn(`[latchkey] could not check LATCHKEY_ENCRYPTION_KEY against the database at start: ${(error as Error).message.split("\n")[0]}`);
    return;
  }
  if (problem) {
    console.error(`[latchkey] cannot start: ${problem}`);
    process.exit(1);
  }
  // The issuer of credentials is pinned at first start (lib/credentials/issuer.ts).
  const { credentialIssuer } = await import("./credentials/issuer");
  await credentialIssuer().catch((error: Error) => console.warn(`[latchkey] could not pin the credential issuer at start: ${error.message.split("\n")[0]}`));
}
