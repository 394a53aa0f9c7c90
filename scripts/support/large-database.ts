import path from "node:path";
import { startEmbeddedPostgres } from "./embedded-postgres";

/**
 * The database the large data set lives in (npm run seed:large, npm run bench:history):
 * "latchkey_large" on DATABASE_URL's server, or on an embedded PostgreSQL kept under
 * .data/postgres-large when DATABASE_URL is unset. Never the portal's own database.
 */
export async function largeDatabase(): Promise<{ url: string; stop: () => Promise<void> }> {
  // A fixed key for the synthetic chain, so the bench can verify what the seed wrote.
  process.env.LATCHKEY_ENCRYPTION_KEY ??= Buffer.from("latchkey synthetic large dataset").toString("base64");
  process.env.NEXTAUTH_SECRET ??= "x".repeat(32);
  process.env.OIDC_ISSUER ??= "http://unused.invalid";
  process.env.OIDC_CLIENT_ID ??= "unused";
  process.env.OIDC_CLIENT_SECRET ??= "unused";
  let server = process.env.DATABASE_URL;
  let stop = async () => {};
  if (!server) {
    const pg = await startEmbeddedPostgres({ dataDir: path.join(process.cwd(), ".data/postgres-large"), persistent: true, quiet: true });
    server = pg.adminUrl;
    stop = () => pg.stop();
  }
  const url = new URL(server);
  url.pathname = "/latchkey_large";
  process.env.DATABASE_URL = url.toString();
  return { url: url.toString(), stop };
}
