/**
 * Runs Latchkey with everything it needs on embedded defaults (development only; it needs
 * the development packages):
 *   npm run dev           next dev, with hot reload
 *   npm run start:local   the production build (.next/standalone/latchkey.mjs, what `npm start` runs)
 * DATABASE_URL unset: an embedded PostgreSQL under .data/postgres (kept across restarts).
 * OIDC_ISSUER unset: the local OpenID Provider with the demo users.
 * Secrets not given are generated once into .data/dev-secrets.json.
 * Then, in development: migrations, job queues, the background worker, and `next dev`;
 * with --prod the compiled production entry does those itself.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { format } from "node:util";
import { nodeOptionsWith } from "../lib/http/preloads";
import { logger } from "../lib/log";
import { DEMO_PASSWORD, DEMO_USERS } from "./support/demo-users";
import { devSecrets } from "./support/dev-secrets";
import { startEmbeddedPostgres } from "./support/embedded-postgres";
import { startLocalIdp } from "./support/local-idp";
import { prepareDatabase } from "./support/prepare-database";

const production = process.argv.includes("--prod");
const root = process.cwd();
const dataDir = path.resolve(process.env.LATCHKEY_DATA_DIR ?? path.join(root, ".data"));
const port = Number(process.env.PORT ?? 3000);
const idpPort = Number(process.env.LATCHKEY_LOCAL_IDP_PORT ?? 3001);
const cleanups: Array<() => Promise<unknown>> = [];
let web: ChildProcess | undefined;

/** In production every line Latchkey prints is a JSON object (lib/log.ts); in development, plain words. */
function log(message: string, fields: Record<string, unknown> = {}) {
  if (production) logger("latchkey").info(message, fields);
  else console.log(`[latchkey] ${message}`);
}

const began = Date.now();
/** Says what is starting, then how long it took, so a slow start shows where the time goes. */
async function step<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  log(`${label}...`);
  const result = await work();
  log(`${label}: ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

async function main() {
  if (production) {
    // Libraries that warn on the console (oidc-provider) write JSON lines too.
    const quiet = logger("latchkey");
    console.warn = (...args: unknown[]) => quiet.warn(format(...args));
  }
  mkdirSync(dataDir, { recursive: true });
  process.env.NEXTAUTH_URL ??= `http://localhost:${port}`;
  const usesLocalIdp = !process.env.OIDC_ISSUER;
  const missingSecrets = ["NEXTAUTH_SECRET", "LATCHKEY_ENCRYPTION_KEY", ...(usesLocalIdp ? ["OIDC_CLIENT_SECRET"] : [])].filter((k) => !process.env[k]);
  if (missingSecrets.length > 0) {
    if (production && !usesLocalIdp) throw new Error(`Set ${missingSecrets.join(", ")}: generated secrets are for local use only.`);
    const secrets = devSecrets(path.join(dataDir, "dev-secrets.json"));
    for (const key of missingSecrets) process.env[key] = secrets[key as keyof typeof secrets];
  }

  if (!process.env.DATABASE_URL) {
    log("DATABASE_URL is not set: using the embedded PostgreSQL (data in .data/postgres)");
    const pg = await step("starting the embedded PostgreSQL", () =>
      startEmbeddedPostgres({
        dataDir: path.join(dataDir, "postgres"),
        port: Number(process.env.LATCHKEY_EMBEDDED_PG_PORT ?? 54329),
        persistent: true,
        quiet: true,
      }),
    );
    cleanups.push(() => pg.stop());
    process.env.DATABASE_URL = pg.adminUrl.replace(/\/postgres$/, "/latchkey");
  }

  if (usesLocalIdp) {
    process.env.OIDC_CLIENT_ID ??= "latchkey-local";
    const idp = await step("starting the local OpenID Provider", () =>
      startLocalIdp({
        port: idpPort,
        clientId: process.env.OIDC_CLIENT_ID!,
        clientSecret: process.env.OIDC_CLIENT_SECRET!,
        redirectUris: [`${process.env.NEXTAUTH_URL}/api/auth/callback/oidc`],
        // Development and tests: a directory that can change while the provider runs.
        directoryFile: process.env.LATCHKEY_LOCAL_IDP_DIRECTORY || undefined,
        postLogoutRedirectUris: [`${process.env.NEXTAUTH_URL}/signin`],
      }),
    );
    cleanups.push(() => idp.close());
    process.env.OIDC_ISSUER = idp.issuer;
    log(`local OpenID Provider at ${idp.issuer}`);
  }

  if (production) return startProduction(usesLocalIdp);

  // Validate the whole configuration and the policy before anything listens.
  const { env } = await import("../lib/env");
  const { policy } = await import("../lib/policy/current");
  env();
  policy();

  const { applied } = await step("migrating the database", () => prepareDatabase(process.env.DATABASE_URL!));
  log(applied.length ? `applied migrations: ${applied.join(", ")}` : "database schema is up to date");
  const { seed } = await import("./support/seed");
  await seed();

  if (process.env.LATCHKEY_WORKER !== "off") {
    const { startWorker } = await import("../lib/jobs/worker");
    const boss = await startWorker(process.env.DATABASE_URL);
    // Graceful: jobs in flight (an execution, a revocation) finish before the worker stops.
    cleanups.unshift(() => boss.stop({ graceful: true, wait: true, timeout: 30_000 }));
    log("worker started (grant expiry)");
  }

  if (process.env.LATCHKEY_AUTHZ_PORT) {
    const url = await startAuthz();
    log(`forward-auth and introspection also at ${url} (a process of its own)`);
  }

  const nextBin = path.join(root, "node_modules", ".bin", "next");
  // Turbopack compiles each page on its first visit (Next.js's faster bundler for next dev); LATCHKEY_DEV_BUNDLER=webpack goes back, and npm run bench:dev compares them.
  const turbopack = process.env.LATCHKEY_DEV_BUNDLER !== "webpack";
  const nextArgs = ["dev", ...(turbopack ? ["--turbopack"] : []), "-p", String(port), "-H", process.env.HOSTNAME ?? "localhost"];
  log(`starting next dev (${turbopack ? "Turbopack" : "webpack"}); the first visit to each page compiles it`);
  // LATCHKEY_CPU_PROFILE=<dir>: the web server writes a V8 CPU profile there when it stops (for benchmarks).
  const profile = process.env.LATCHKEY_CPU_PROFILE;
  web = spawn(
    profile ? process.execPath : nextBin,
    profile ? ["--cpu-prof", "--cpu-prof-dir", profile, path.join(root, "node_modules/next/dist/bin/next"), ...nextArgs] : nextArgs,
    {
      stdio: ["ignore", "inherit", "inherit"],
      // h2c-preload: clients asking to upgrade to cleartext HTTP/2 (the JDK's HttpClient) get an HTTP/1.1 answer, not a dropped connection.
      env: { ...process.env, LATCHKEY_WORKER: "off", ...withPreloads("h2c-preload.cjs", "supervised-preload.cjs") },
    },
  );
  web.on("exit", (code) => {
    log(`web server exited (${code ?? "signal"})`);
    void shutdown(code ?? 1);
  });

  const url = `http://localhost:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      const res = await fetch(`${url}/api/health`);
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(`
  Latchkey is running: ${url}  (started in ${((Date.now() - began) / 1000).toFixed(1)} s)
${
  usesLocalIdp
    ? `  Sign in through the local identity provider; every demo user's password is "${DEMO_PASSWORD}":
${DEMO_USERS.map((u) => `    ${u.email.padEnd(20)} ${u.groups.join(", ")}`).join("\n")}
`
    : ""
}`);
}

/**
 * NODE_OPTIONS for a process this one starts, with preloads of lib/http, and this process's
 * id for supervised-preload, which stops it (as on SIGTERM) should this process be killed
 * without a word: a crash here must not leave next dev or the production entry running.
 */
function withPreloads(...files: string[]): { NODE_OPTIONS: string; LATCHKEY_SUPERVISOR_PID: string } {
  return {
    NODE_OPTIONS: nodeOptionsWith(path.join(root, "lib/http"), files),
    LATCHKEY_SUPERVISOR_PID: String(process.pid),
  };
}

/** The compiled production entry (npm start) on the embedded defaults set up above. */
async function startProduction(usesLocalIdp: boolean) {
  const entry = path.join(root, ".next/standalone/latchkey.mjs");
  if (!existsSync(entry)) throw new Error("No production build: run `npm run build` first.");
  if (usesLocalIdp)
    log("sign in through the local identity provider", {
      signIn: `every demo user's password is "${DEMO_PASSWORD}"`,
      demoUsers: DEMO_USERS.map((u) => u.email),
    });
  // The standalone directory holds its own copy of the policy; keep reading the project's.
  const policyFile = path.resolve(root, process.env.LATCHKEY_POLICY_FILE ?? "policy/latchkey.yaml");
  const profile = process.env.LATCHKEY_CPU_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", process.env.LATCHKEY_CPU_PROFILE] : [];
  web = spawn(process.execPath, [...profile, entry], {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      LATCHKEY_POLICY_FILE: policyFile,
      HOSTNAME: process.env.HOSTNAME ?? "localhost",
      ...withPreloads("supervised-preload.cjs"),
    },
  });
  web.on("exit", (code) => void shutdown(code ?? 1));
}

/** The lean authorization listener in its own process (scripts/authz.ts), restarted if it dies. */
let authz: ChildProcess | undefined;
function startAuthz(): Promise<string> {
  return new Promise((resolve, reject) => {
    const profile = process.env.LATCHKEY_CPU_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", process.env.LATCHKEY_CPU_PROFILE] : [];
    const child = fork(path.join(root, "scripts/authz.ts"), {
      execArgv: [...process.execArgv, "--max-semi-space-size=32", ...profile],
      env: { ...process.env, LATCHKEY_WORKER: "off" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    authz = child;
    child.once("message", (message: { ready?: string }) => (message.ready ? resolve(message.ready) : undefined));
    child.once("exit", (code) => {
      if (stopping) return;
      reject(new Error(`the authorization listener exited (${code ?? "signal"})`));
      log(`the authorization listener exited (${code ?? "signal"}); starting it again`);
      setTimeout(() => void startAuthz().catch((error: Error) => log(error.message)), 1_000);
    });
  });
}

let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  log("shutting down: finishing requests and jobs in flight");
  // next start finishes the requests it is serving on SIGTERM; give it up to 30 s.
  if (web && web.exitCode === null) {
    const exited = new Promise((resolve) => web!.once("exit", resolve));
    web.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
  }
  if (authz && authz.exitCode === null) {
    const exited = new Promise((resolve) => authz!.once("exit", resolve));
    authz.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  process.exit(code);
}

process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
main().catch(async (error) => {
  if (production) logger("latchkey").error("could not start", { error: error instanceof Error ? error.message : String(error) });
  else console.error(`[latchkey] could not start:\n${error instanceof Error ? error.message : String(error)}`);
  await shutdown(1);
});
