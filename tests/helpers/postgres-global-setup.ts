import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../scripts/support/embedded-postgres";

/**
 * One PostgreSQL server for the run: DATABASE_URL's server when it is set, otherwise an
 * embedded one in a temporary folder. Each test file creates and drops its own database.
 */
declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

// Vitest 3 reports a failing global setup but may still exit 0: fail the run explicitly.
export default async function setup(project: TestProject) {
  try {
    return await start(project);
  } catch (error) {
    console.error(`[test] global setup failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  }
}

async function start(project: TestProject) {
  if (process.env.DATABASE_URL) {
    const admin = new URL(process.env.DATABASE_URL);
    admin.pathname = "/postgres";
    project.provide("pgAdminUrl", admin.toString());
    process.env.LATCHKEY_TEST_PG_ADMIN_URL = admin.toString();
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-pg-"));
  // As root, Postgres runs as the `postgres` user, which must be able to enter this folder.
  await chmod(dir, 0o755);
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, "data"), persistent: false, quiet: true });
  project.provide("pgAdminUrl", pg.adminUrl);
  // Read by the portal's global setup, which runs next in this process.
  process.env.LATCHKEY_TEST_PG_ADMIN_URL = pg.adminUrl;
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
