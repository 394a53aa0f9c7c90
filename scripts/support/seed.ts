import { db } from "../../lib/db";
import { activeSigningKey } from "../../lib/credentials/keys";

/** Seed data every install needs: the first signing key, so JWKS is never empty. Idempotent. */
export async function seed(): Promise<void> {
  await db.$transaction((tx) => activeSigningKey(tx));
}
