import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { failRunOnError } from "./fail-run";
import { buildPortal, portalSecrets, startPortal } from "./portal-process";
import { freePort } from "../../scripts/support/ports";

/**
 * Builds the portal and runs it the way `npm start` does (scripts/serve.ts --prod): the
 * local OpenID Provider, migrations, the worker and `next start`, on a database of its own.
 * LATCHKEY_E2E_SKIP_BUILD=1 reuses an existing build while iterating locally.
 */
declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    e2eDatabaseUrl: string;
    /** Everything the portal printed, for the test that scans it for secrets. */
    portalLog: string;
    /** The secrets the portal was started with; none may ever appear in its output. */
    portalSecrets: string[];
    /** The local identity provider's directory file: tests change people's groups in it between sign-ins. */
    idpDirectoryFile: string;
  }
}

export default function setup(project: TestProject) {
  return failRunOnError(() => start(project));
}

async function start(project: TestProject) {
  const root = process.cwd();
  const adminUrl = process.env.LATCHKEY_TEST_PG_ADMIN_URL;
  if (!adminUrl) throw new Error("the Postgres global setup must run first");
  buildPortal(root);

  const dbName = `latchkey_e2e_${randomBytes(6).toString("hex")}`;
  const databaseUrl = new URL(adminUrl);
  databaseUrl.pathname = `/${dbName}`;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "latchkey-e2e-"));
  const secrets = portalSecrets();
  const logFile = path.join(root, "tests/.artifacts/portal.log");
  mkdirSync(path.dirname(logFile), { recursive: true });
  writeFileSync(logFile, "");
  const idpDirectoryFile = path.join(dataDir, "idp-directory.json");
  writeFileSync(idpDirectoryFile, "{}");
  const portal = await startPortal({
    databaseUrl: databaseUrl.toString(),
    port: await freePort(),
    idpPort: await freePort(),
    dataDir,
    env: { ...secrets, LATCHKEY_LOCAL_IDP_DIRECTORY: idpDirectoryFile },
    logFile,
  });

  project.provide("baseUrl", portal.url);
  project.provide("e2eDatabaseUrl", databaseUrl.toString());
  project.provide("portalLog", logFile);
  project.provide("portalSecrets", Object.values(secrets));
  project.provide("idpDirectoryFile", idpDirectoryFile);

  return async () => {
    await portal.stop();
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await client.end();
    await rm(dataDir, { recursive: true, force: true });
  };
}
