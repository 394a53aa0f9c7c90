import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/**
 * A portal instance run the way `npm run start:local` runs it (scripts/serve.ts --prod): the
 * local OpenID Provider, then the compiled production entry `npm start` runs (migrations,
 * the worker and the standalone Next.js server). It runs in a process group of
 * its own, so a test can stop it as an operator would (SIGTERM) or kill all of it at once,
 * serve.ts, its worker and next, as a crash or the OOM killer would (SIGKILL).
 */
export interface PortalOptions {
  databaseUrl: string;
  port: number;
  /** Port of the local OpenID Provider serve.ts starts; each instance on a host needs its own. */
  idpPort: number;
  dataDir: string;
  /** Secrets and any further configuration; the instance also inherits this process's environment. */
  env: Record<string, string>;
  /** Everything the instance prints is appended to this file. */
  logFile: string;
}

export interface PortalProcess {
  url: string;
  pid: number;
  /** Everything the instance printed so far. */
  output(): string;
  /** SIGTERM to the whole group (a graceful shutdown); SIGKILL if it is not gone within the time given. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to the whole group; resolves once no process of it is left. */
  kill(): Promise<void>;
}

/** The secrets an instance starts with; instances of one portal, and a test acting beside them, share them. */
export function portalSecrets() {
  return {
    NEXTAUTH_SECRET: randomBytes(32).toString("base64url"),
    LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    OIDC_CLIENT_SECRET: randomBytes(16).toString("hex"),
  };
}

/** Builds the portal as `npm run build` does (next build, then the production entry) unless LATCHKEY_E2E_SKIP_BUILD=1 and a build exists. */
export function buildPortal(root = process.cwd()): void {
  if (process.env.LATCHKEY_E2E_SKIP_BUILD === "1" && existsSync(path.join(root, ".next/standalone/latchkey.mjs"))) return;
  const started = Date.now();
  const env = { ...process.env, NEXT_TELEMETRY_DISABLED: "1" };
  const build = spawnSync(path.join(root, "node_modules/.bin/next"), ["build"], { cwd: root, stdio: "inherit", env });
  if (build.status !== 0) throw new Error("next build failed");
  const entry = spawnSync(process.execPath, ["scripts/build-server.mjs"], { cwd: root, stdio: "inherit", env });
  if (entry.status !== 0) throw new Error("building the production entry failed");
  console.log(`[e2e] built the portal in ${Math.round((Date.now() - started) / 1000)} s`);
}

export async function startPortal(options: PortalOptions): Promise<PortalProcess> {
  const root = process.cwd();
  const url = `http://localhost:${options.port}`;
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: "a" });
  const server = spawn(path.join(root, "node_modules/.bin/tsx"), ["--conditions=react-server", "scripts/serve.ts", "--prod"], {
    cwd: root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      PORT: String(options.port),
      LATCHKEY_LOCAL_IDP_PORT: String(options.idpPort),
      LATCHKEY_DATA_DIR: options.dataDir,
      DATABASE_URL: options.databaseUrl,
      NEXTAUTH_URL: url,
      ...options.env,
      // Empty: serve.ts starts its local OpenID Provider.
      OIDC_ISSUER: "",
    },
  });
  const pid = server.pid!;
  let output = "";
  let exited = false;
  server.once("exit", () => (exited = true));
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      log.write(text);
      if (process.env.LATCHKEY_E2E_VERBOSE) process.stdout.write(text);
      if (output.includes("Latchkey is running")) resolve();
    };
    server.stdout!.on("data", onData);
    server.stderr!.on("data", onData);
    server.once("exit", (code, signal) => reject(new Error(`the portal exited (${code ?? signal}) before it was ready:\n${output.slice(-4000)}`)));
    setTimeout(() => reject(new Error(`the portal was not ready within 120 s:\n${output.slice(-4000)}`)), 120_000).unref();
  });

  const release = () => {
    server.stdout?.destroy();
    server.stderr?.destroy();
    server.unref();
    log.end();
  };
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      /* already gone */
    }
  };
  const instance: PortalProcess = {
    url,
    pid,
    output: () => output,
    async stop(graceMs = 40_000) {
      signalGroup("SIGTERM");
      if (!(await groupGone(pid, graceMs))) {
        signalGroup("SIGKILL");
        await groupGone(pid, 10_000);
      }
      release();
    },
    async kill() {
      signalGroup("SIGKILL");
      if (!(await groupGone(pid, 10_000))) throw new Error(`processes of the portal's group ${pid} outlived SIGKILL`);
      release();
    },
  };
  try {
    await ready;
  } catch (error) {
    if (!exited) await instance.kill().catch(() => undefined);
    else release();
    throw error;
  }
  return instance;
}

/** Waits until no live process is left in the group (zombies waiting to be reaped do not count). */
async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (groupMembers(pgid).length === 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return groupMembers(pgid).length === 0;
}

/** Live processes of a process group, from /proc (Linux); elsewhere, whether the group still answers signal 0. */
export function groupMembers(pgid: number): number[] {
  if (!existsSync("/proc/self/stat")) {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // it ended while we looked
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") members.push(Number(entry));
  }
  return members;
}
