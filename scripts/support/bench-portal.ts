import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { dropDatabase } from "./prepare-database";
import { freePort, startEmbeddedPostgres } from "./embedded-postgres";

/**
 * The production build for benchmarks, run as `npm start` runs it (scripts/serve.ts
 * --prod) on a fresh database "latchkey_bench_<pid>" of DATABASE_URL's server, or of an embedded
 * PostgreSQL when DATABASE_URL is unset; named for the process, so benchmarks run at the same
 * time on one server (other checkouts, other scripts) never drop each other's database. Builds first when there is no build. This process
 * gets the same configuration, so it can make users and tokens through lib/.
 */
export interface BenchPortal {
  url: string;
  databaseUrl: string;
  adminUrl: string;
  /** The process group of the portal's processes (scripts/support/process-cpu.ts). */
  processGroup: number | undefined;
  stop: () => Promise<void>;
}

/**
 * Whether a benchmark builds the portal before it starts: when there is no build (the compiled entry is the last step of
 * `npm run build`, so without it there is nothing to serve), or when BENCH_BUILD=1 asks for one. Otherwise it runs the
 * build already in .next/standalone, which after a change of the code is the old code (README, "Benchmarks").
 */
export function needsBuild(root: string, env: Record<string, string | undefined>): boolean {
  return !existsSync(path.join(root, ".next/standalone/latchkey.mjs")) || env.BENCH_BUILD === "1";
}

/** `extraEnv` may depend on the PostgreSQL server the portal runs on (its admin URL), e.g. a target database of the same server. */
export async function startBenchPortal(extraEnv: Record<string, string> | ((serverUrl: string) => Record<string, string>) = {}): Promise<BenchPortal> {
  const root = process.cwd();
  if (needsBuild(root, process.env)) {
    console.log("[bench] building the portal (npm run build)…");
    const build = spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit", env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } });
    if (build.status !== 0) throw new Error("npm run build failed");
  }
  let server = process.env.DATABASE_URL;
  let stopPg = async () => {};
  const scratch = await mkdtemp(path.join(os.tmpdir(), "latchkey-bench-"));
  if (!server) {
    // Run as root, the embedded server drops to a user of its own, which must reach its data directory.
    await chmod(scratch, 0o755);
    const embedded = await startEmbeddedPostgres({ dataDir: path.join(scratch, "pg"), persistent: false, quiet: true });
    server = embedded.adminUrl;
    stopPg = () => embedded.stop();
  }
  const admin = new URL(server);
  admin.pathname = "/postgres";
  const databaseUrl = new URL(server);
  databaseUrl.pathname = `/latchkey_bench_${process.pid}`;
  await dropDatabase(databaseUrl.toString());

  const port = await freePort();
  const env: Record<string, string> = {
    NODE_ENV: "production",
    NEXT_TELEMETRY_DISABLED: "1",
    PORT: String(port),
    LATCHKEY_LOCAL_IDP_PORT: String(await freePort()),
    LATCHKEY_DATA_DIR: scratch,
    DATABASE_URL: databaseUrl.toString(),
    NEXTAUTH_URL: `http://localhost:${port}`,
    NEXTAUTH_SECRET: randomBytes(32).toString("base64url"),
    LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    OIDC_CLIENT_SECRET: randomBytes(16).toString("hex"),
    // Load, not abuse: the limits would otherwise be what is measured.
    LATCHKEY_RATE_LIMIT_TOKEN: "10000000",
    LATCHKEY_RATE_LIMIT_ADDRESS: "10000000",
    ...(typeof extraEnv === "function" ? extraEnv(server) : extraEnv),
  };
  const child: ChildProcess = spawn(path.join(root, "node_modules/.bin/tsx"), ["--conditions=react-server", "scripts/serve.ts", "--prod"], {
    cwd: root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env, OIDC_ISSUER: "" },
  });
  const output: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (chunk.toString().includes("Latchkey is running")) resolve();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`the portal exited (${code}):\n${output.join("").slice(-3000)}`)));
    setTimeout(() => reject(new Error(`the portal was not ready within 120 s:\n${output.join("").slice(-3000)}`)), 120_000).unref();
  });
  // This process acts on the same database with the same keys (users, tokens, sessions).
  Object.assign(process.env, env, { OIDC_ISSUER: "http://localhost:1", OIDC_CLIENT_ID: "latchkey-local" });
  return {
    url: `http://localhost:${port}`,
    databaseUrl: databaseUrl.toString(),
    adminUrl: admin.toString(),
    processGroup: child.pid,
    async stop() {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        /* gone */
      }
      await new Promise((r) => setTimeout(r, 1500));
      await dropDatabase(databaseUrl.toString());
      await stopPg();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

export const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;

/** Writes a benchmark's figures to bench/<name>.json with the machine they ran on. */
export function saveResults(name: string, figures: Record<string, unknown>): void {
  const dir = path.join(process.cwd(), "bench");
  mkdirSync(dir, { recursive: true });
  const machine = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
  };
  writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify({ ranAt: new Date().toISOString(), machine, ...figures }, null, 2)}\n`);
  console.log(`\n[bench] figures written to bench/${name}.json`);
}

/** A person for a benchmark, made directly in the bench database (after startBenchPortal). */
export async function benchUser(email: string, groups: string[]) {
  const { db } = await import("../../lib/db");
  const { rolesForGroups } = await import("../../lib/policy/evaluate");
  const { policy } = await import("../../lib/policy/current");
  const roles = rolesForGroups(policy(), groups);
  const user = await db.user.create({ data: { email, name: email, groups, roles } });
  return { id: user.id, email, groups, roles };
}
