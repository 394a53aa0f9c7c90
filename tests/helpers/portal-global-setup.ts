import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { failRunOnError } from "./fail-run";
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
  }
}

export default function setup(project: TestProject) {
  return failRunOnError(() => start(project));
}

async function start(project: TestProject) {
  const root = process.cwd();
  const adminUrl = process.env.LATCHKEY_TEST_PG_ADMIN_URL;
  if (!adminUrl) throw new Error("the Postgres global setup must run first");
  if (!(process.env.LATCHKEY_E2E_SKIP_BUILD === "1" && existsSync(path.join(root, ".next/BUILD_ID")))) {
    const started = Date.now();
    const build = spawnSync(path.join(root, "node_modules/.bin/next"), ["build"], { cwd: root, stdio: "inherit", env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } });
    if (build.status !== 0) throw new Error("next build failed");
    console.log(`[e2e] built the portal in ${Math.round((Date.now() - started) / 1000)} s`);
  }

  const dbName = `latchkey_e2e_${randomBytes(6).toString("hex")}`;
  const databaseUrl = new URL(adminUrl);
  databaseUrl.pathname = `/${dbName}`;
  const port = await freePort();
  const idpPort = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "latchkey-e2e-"));
  const baseUrl = `http://localhost:${port}`;

  const secrets = {
    NEXTAUTH_SECRET: randomBytes(32).toString("base64url"),
    LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    OIDC_CLIENT_SECRET: randomBytes(16).toString("hex"),
  };
  const logFile = path.join(root, "tests/.artifacts/portal.log");
  mkdirSync(path.dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile);
  const server = spawn(path.join(root, "node_modules/.bin/tsx"), ["--conditions=react-server", "scripts/serve.ts", "--prod"], {
    cwd: root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      PORT: String(port),
      LATCHKEY_LOCAL_IDP_PORT: String(idpPort),
      LATCHKEY_DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl.toString(),
      NEXTAUTH_URL: baseUrl,
      ...secrets,
      OIDC_ISSUER: "",
    },
  });
  const output: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output.push(text);
      log.write(text);
      if (process.env.LATCHKEY_E2E_VERBOSE) process.stdout.write(text);
      if (text.includes("Latchkey is running")) resolve();
    };
    server.stdout!.on("data", onData);
    server.stderr!.on("data", onData);
    server.on("exit", (code) => reject(new Error(`the portal exited (${code}) before it was ready:\n${output.join("").slice(-4000)}`)));
    setTimeout(() => reject(new Error(`the portal was not ready within 120 s:\n${output.join("").slice(-4000)}`)), 120_000).unref();
  });
  await ready;

  project.provide("baseUrl", baseUrl);
  project.provide("e2eDatabaseUrl", databaseUrl.toString());
  project.provide("portalLog", logFile);
  project.provide("portalSecrets", Object.values(secrets));

  return async () => {
    try {
      process.kill(-server.pid!, "SIGTERM");
    } catch {
      /* already gone */
    }
    await new Promise((r) => setTimeout(r, 1500));
    server.stdout?.destroy();
    server.stderr?.destroy();
    server.unref();
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await client.end();
    await rm(dataDir, { recursive: true, force: true });
  };
}
