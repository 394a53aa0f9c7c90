/**
 * Secrets generated once for local use (.data/dev-secrets.json), so a development portal
 * keeps its sessions and encrypted data across restarts. The file is read strictly: a
 * mistyped name would otherwise be ignored and a fresh secret silently used instead.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { configNouns } from "../../lib/config/nouns";
import { checkConfigText } from "../../lib/config/validate-file";

const devSecretsSchema = z
  .strictObject({
    NEXTAUTH_SECRET: z.string().min(32, { message: "must be at least 32 characters" }),
    LATCHKEY_ENCRYPTION_KEY: z.string().refine((v) => Buffer.from(v, "base64").length === 32, { message: "must be 32 bytes, base64-encoded" }),
    OIDC_CLIENT_SECRET: z.string().min(1),
  })
  .register(configNouns, { noun: "the development secrets file" });

export type DevSecrets = z.infer<typeof devSecretsSchema>;

export class DevSecretsError extends Error {}

/** The secrets in the file, created on first use; a damaged file is an error naming the place, never replaced. */
export function devSecrets(file: string): DevSecrets {
  if (existsSync(file)) {
    const result = checkConfigText(readFileSync(file, "utf8"), file, devSecretsSchema);
    if (!result.ok)
      throw new DevSecretsError(
        `${file}: invalid development secrets (delete the file to generate new ones)\n${result.problems.map((p) => `  ${p}`).join("\n")}`,
      );
    return result.data;
  }
  const secrets: DevSecrets = {
    NEXTAUTH_SECRET: randomBytes(32).toString("base64url"),
    LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    OIDC_CLIENT_SECRET: randomBytes(24).toString("base64url"),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
