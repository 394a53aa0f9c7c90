/**
 * The production entry, `npm start`. scripts/build-server.mjs compiles it at build time into
 * the standalone output (`.next/standalone/latchkey.mjs`), so production runs on plain
 * Node.js: no TypeScript toolchain, no embedded PostgreSQL, no demo identity provider.
 *
 *   node latchkey.mjs [all]   migrations, then the worker, the authorization listener
 *                             (LATCHKEY_AUTHZ_PORT) and the web server (the default)
 *   node latchkey.mjs web     the web server only (its own process, worker off)
 *   node latchkey.mjs worker  the background worker only
 *   node latchkey.mjs authz   the lean authorization listener only
 *   node latchkey.mjs migrate migrations and seed data, then exit (a Kubernetes Job or init step)
 *
 * Every line it prints is a JSON object (lib/log.ts); Next.js's own lines are relayed as
 * component "next".
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { format } from "node:util";
import { productionProblems } from "../lib/config/production";
import { webServerSettings } from "../lib/http/preloads";
import { logger } from "../lib/log";

const ROLES = ["all", "web", "worker", "authz", "migrate"] as const;
type Role = (typeof ROLES)[number];
const here = path.dirname(fileURLToPath(import.meta.url));
const log = logger("latchkey");
const port = Number(process.env.PORT ?? 3000);
const cleanups: Array<() => Promise<unknown>> = [];
let web: ChildProcess | undefined;
let authz: ChildProcess | undefined;
let stopping = false;

/** Next.js prints plain lines; each becomes a JSON log line of component "next". */
function relayAsJson(stream: NodeJS.ReadableStream, level: "info" | "warn") {
  const next = logger("next");
  createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => {
    const text = line.replace(/\x1b\[[0-9;]*m/g, "").trim();
    if (!text) return;
    if (text.startsWith("{") && text.endsWith("}")) {
      process[level === "info" ? "stdout" : "stderr"].write(`${text}\n`);
      return;
    }
    next[/error/i.test(text) ? "error" : level](text);
  });
}

async function migrateAndSeed() {
  const { prepareDatabase } = await import("./support/prepare-database");
  const { applied } = await prepareDatabase(process.env.DATABASE_URL!);
  log.info(applied.length ? `applied migrations: ${applied.join(", ")}` : "database schema is up to date");
  const { seed } = await import("./support/seed");
  await seed();
}

async function startWorkerHere() {
  const { startWorker } = await import("../lib/jobs/worker");
  const boss = await startWorker(process.env.DATABASE_URL!);
  // Graceful: jobs in flight (an execution, a revocation) finish before the worker stops.
  cleanups.push(() => boss.stop({ graceful: true, wait: true, timeout: 30_000 }));
  log.info("worker started (grant expiry)");
  if (process.env.LATCHKEY_WORKER_PORT) {
    const { startWorkerListener } = await import("../lib/observability/worker-listener");
    let running = true;
    boss.on("stopped", () => (running = false));
    const listener = await startWorkerListener(Number(process.env.LATCHKEY_WORKER_PORT), process.env.HOSTNAME ?? "0.0.0.0", () => running && !stopping);
    cleanups.push(() => listener.close());
    log.info(`worker health and metrics at ${listener.url}`);
  }
}

async function runAuthzHere() {
  const { startAuthzListener } = await import("../lib/authz/listener");
  const { disconnectDb } = await import("../lib/db");
  const listener = await startAuthzListener(Number(process.env.LATCHKEY_AUTHZ_PORT), process.env.HOSTNAME ?? "0.0.0.0");
  // Run in reverse: answers in flight finish, then the database connection closes.
  cleanups.push(
    () => disconnectDb(),
    () => listener.close(),
  );
  process.send?.({ ready: listener.url });
  // Started by "all": the parent went away without a word (killed), so do not linger as an orphan.
  if (process.send) process.on("disconnect", () => void shutdown(0));
  return listener.url;
}

/** The listener in a process of its own, restarted if it dies: the portal's pages never hold up a proxy's decision. */
function forkAuthz(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ["authz"], {
      env: { ...process.env, LATCHKEY_WORKER: "off" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    authz = child;
    child.once("message", (message: { ready?: string }) => (message.ready ? resolve(message.ready) : undefined));
    child.once("exit", (code) => {
      if (stopping) return;
      reject(new Error(`the authorization listener exited (${code ?? "signal"})`));
      log.warn(`the authorization listener exited (${code ?? "signal"}); starting it again`);
      setTimeout(() => void forkAuthz().catch((error: Error) => log.error(error.message)), 1_000);
    });
  });
}

/** Next.js's standalone server (server.js beside this file) in a process of its own. */
async function startWeb() {
  // LATCHKEY_CPU_PROFILE=<dir>: the web server writes a V8 CPU profile there when it stops (for benchmarks).
  const profile = process.env.LATCHKEY_CPU_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", process.env.LATCHKEY_CPU_PROFILE] : [];
  if (profile.length) log.warn("LATCHKEY_CPU_PROFILE is set: the web server keeps a CPU profile in memory until it stops (for benchmarks, not for production)");
  web = spawn(process.execPath, [...profile, path.join(here, "server.js")], {
    cwd: here,
    // The IPC channel is only watched: it closes when this process goes away, and the server then stops (supervised-preload).
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    // h2c-preload: clients asking to upgrade to cleartext HTTP/2 (the JDK's HttpClient) get an HTTP/1.1 answer, not a dropped connection.
    env: {
      ...process.env,
      LATCHKEY_WORKER: "off",
      PORT: String(port),
      HOSTNAME: process.env.HOSTNAME ?? "0.0.0.0",
      // Idle keep-alive connections kept 65 s, as on the authorization listener, and a larger young generation (lib/http/preloads.ts).
      ...webServerSettings(process.env, path.join(here, "lib/http")),
    },
  });
  relayAsJson(web.stdout!, "info");
  relayAsJson(web.stderr!, "warn");
  web.on("exit", (code) => {
    log.info(`web server exited (${code ?? "signal"})`);
    void shutdown(code ?? 1);
  });
  const url = `http://localhost:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${url}/api/health`)).ok) break;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  log.info(`Latchkey is running: ${process.env.NEXTAUTH_URL ?? url}`);
}

async function main(role: Role) {
  // Libraries that warn on the console write JSON lines too.
  console.warn = (...args: unknown[]) => log.warn(format(...args));
  (process.env as Record<string, string>).NODE_ENV = "production";
  process.chdir(here);
  const problems = productionProblems(process.env);
  if (problems.length > 0) throw new Error(problems.join("\n"));
  process.env.NEXTAUTH_URL ??= `http://localhost:${port}`;
  // Validate the whole configuration and the policy before anything listens.
  const { env } = await import("../lib/env");
  const { policy } = await import("../lib/policy/current");
  env();
  policy();

  if (role === "migrate") return void (await migrateAndSeed(), await shutdown(0));
  if (role === "authz") return void (await runAuthzHere());
  if (role === "worker") return startWorkerHere();
  if (role === "all") {
    await migrateAndSeed();
    if (process.env.LATCHKEY_WORKER !== "off") await startWorkerHere();
    if (process.env.LATCHKEY_AUTHZ_PORT) log.info(`forward-auth and introspection also at ${await forkAuthz()} (a process of its own)`);
  }
  await startWeb();
}

async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  log.info("shutting down: finishing requests and jobs in flight");
  // The web server finishes the requests it is serving on SIGTERM; give it up to 30 s.
  for (const [child, graceMs] of [
    [web, 30_000],
    [authz, 10_000],
  ] as const) {
    if (!child || child.exitCode !== null) continue;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, graceMs))]);
  }
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  process.exit(code);
}

const role = (process.argv[2] ?? "all") as Role;
if (!ROLES.includes(role)) {
  log.error(`unknown role "${role}"`, { roles: ROLES });
  process.exit(2);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
process.on("unhandledRejection", (error) => log.error("unhandled rejection", { error }));
main(role).catch(async (error) => {
  log.error("could not start", { error: error instanceof Error ? error.message : String(error) });
  await shutdown(1);
});
