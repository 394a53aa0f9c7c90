import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/support/ports";
import { startApiServer } from "../helpers/api-server";
import { echoBackends, type Seen } from "../helpers/echo-backend";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * Debian's real Caddy running deploy/caddy/Caddyfile (placeholders substituted) in front of
 * two echo backends, asking the forward-auth route handler.
 */
const CADDY = "/usr/bin/caddy";
const SHIPPED = "deploy/caddy/Caddyfile";
const PROXY_SECRET = randomBytes(24).toString("base64url");

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal;
let bob: Principal;
let dir: string;
let caddy: ChildProcess | undefined;
let output = "";
let port: number;
/** The shipped site with a secret Latchkey does not know. */
let wrongSecretPort: number;
/** The shipped site with `handle` for `route`: directives sorted in Caddy's order, the trap the file avoids. */
let sortedPort: number;
const backends = echoBackends();
const { hits } = backends;

/** The shipped site block for one site. Throws if a placeholder is gone, so this test keeps following the file. */
function site(shipped: string, s: { port: number; host: string; upstream: number; secret: string; cert: string; key: string }): string {
  const block = shipped.slice(shipped.indexOf("payments.internal.example.com {"));
  const replacements: [string, string][] = [
    ["payments.internal.example.com {", `https://${s.host}:${s.port} {`],
    ["header_up X-Forwarded-Host payments.internal.example.com", `header_up X-Forwarded-Host ${s.host}`],
    ["/etc/caddy/tls/payments.internal.example.com.crt", s.cert],
    ["/etc/caddy/tls/payments.internal.example.com.key", s.key],
    ["http://payments-api.internal:8080", `http://127.0.0.1:${s.upstream}`],
    ["http://latchkey.internal:3000", api.url.replace("localhost", "127.0.0.1")],
    ["REPLACE_WITH_LATCHKEY_FORWARD_AUTH_SECRET", s.secret],
  ];
  let conf = block;
  for (const [from, to] of replacements) {
    if (!conf.includes(from)) throw new Error(`${SHIPPED} no longer contains "${from}": update the substitutions in this test.`);
    conf = conf.replaceAll(from, to);
  }
  return conf;
}

/** One request through Caddy, with the Host (and SNI) of the site asked for. */
function call(
  listenPort: number,
  host: string,
  uri: string,
  options: { token?: string; cookie?: string; headers?: Record<string, string>; method?: string; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; seen?: Seen }> {
  const headers: Record<string, string> = { host: `${host}:${listenPort}`, ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.cookie) headers.cookie = options.cookie;
  return new Promise((resolve, reject) => {
    // The certificate is a throwaway self-signed one: TLS is not what is tested here.
    const req = https.request(
      { host: "127.0.0.1", port: listenPort, path: uri, method: options.method ?? "GET", headers, servername: host, rejectUnauthorized: false, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          const fromBackend = res.headers["content-type"] === "application/json";
          resolve({ status: res.statusCode!, headers: res.headers, text, seen: fromBackend ? (JSON.parse(text) as Seen) : undefined });
        });
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Refused by Caddy, and the backend never saw the request. */
async function refused(listenPort: number, host: string, uri: string, options: Parameters<typeof call>[3] = {}) {
  const before = hits.length;
  const answer = await call(listenPort, host, uri, options);
  expect(hits.length, `${host}${uri} reached a backend`).toBe(before);
  expect(answer.seen).toBeUndefined();
  return answer;
}

beforeAll(async () => {
  if (!existsSync(CADDY)) throw new Error(`Caddy is not installed at ${CADDY}: apt-get install -y caddy (npm test does this as root).`);
  fx = await engineFixture({ LATCHKEY_FORWARD_AUTH_PROXIES: `edge-caddy=${PROXY_SECRET}` });
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  api = await startApiServer();

  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-caddy-"));
  const [payments, scratch] = [await freePort(), await freePort()];
  [port, wrongSecretPort, sortedPort] = [await freePort(), await freePort(), await freePort()];
  await backends.start("payments", payments);
  await backends.start("scratch", scratch);
  const cert = path.join(dir, "tls.crt");
  const key = path.join(dir, "tls.key");
  await promisify(execFile)("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=latchkey-test",
    "-keyout",
    key,
    "-out",
    cert,
  ]);

  const shipped = await readFile(SHIPPED, "utf8");
  const tls = { cert, key };
  const sites = [
    site(shipped, { port, host: "payments.staging.test", upstream: payments, secret: PROXY_SECRET, ...tls }),
    site(shipped, { port, host: "scratch.test", upstream: scratch, secret: PROXY_SECRET, ...tls }),
    site(shipped, { port: wrongSecretPort, host: "payments.staging.test", upstream: payments, secret: randomBytes(24).toString("base64url"), ...tls }),
    site(shipped, { port: sortedPort, host: "payments.staging.test", upstream: payments, secret: PROXY_SECRET, ...tls }).replace("\troute {", "\thandle {"),
  ];
  // No admin endpoint, no certificate automation, nothing written outside the test's directory.
  await writeFile(
    path.join(dir, "Caddyfile"),
    `{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system ${path.join(dir, "data")}\n}\n\n${sites.join("\n")}`,
  );
  caddy = spawn(CADDY, ["run", "--config", path.join(dir, "Caddyfile"), "--adapter", "caddyfile"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
  });
  caddy.stdout!.on("data", (c) => (output += c));
  caddy.stderr!.on("data", (c) => (output += c));
  for (let i = 0; i < 100; i++) {
    if (caddy.exitCode !== null) break;
    try {
      await call(port, "payments.staging.test", "/");
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`Caddy did not start:\n${output}`);
});

afterAll(async () => {
  if (caddy && caddy.exitCode === null) {
    const exited = new Promise((resolve) => caddy!.once("exit", resolve));
    caddy.kill("SIGTERM");
    await exited;
  }
  backends.close();
  await api?.close();
  await fx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function grant(overrides: Record<string, unknown> = {}): Promise<{ requestId: string; token: string }> {
  const request = await engine.createRequest(alice, "temporary-access", validInput(overrides));
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
  const { token } = await engine.revealCredential(alice, request.id);
  return { requestId: request.id, token };
}

describe("Caddy with deploy/caddy/Caddyfile", () => {
  it("lets a valid credential through with Latchkey's identity headers (not stripped by the client-header removal)", async () => {
    const { requestId, token } = await grant();
    const ok = await call(port, "payments.staging.test", "/v1/payments?limit=5", { token });
    expect(ok.status).toBe(200);
    expect(ok.seen).toMatchObject({ backend: "payments", method: "GET", url: "/v1/payments?limit=5" });
    expect(ok.seen!.headers).toMatchObject({
      "x-latchkey-user": "alice@example.com",
      "x-latchkey-groups": "engineering",
      "x-latchkey-grant": requestId,
      "x-latchkey-target": "payments-api-staging",
      "x-latchkey-role": "read",
    });
    expect(ok.seen!.headers["x-latchkey-proxy-secret"]).toBeUndefined();
    expect(JSON.stringify(ok.seen)).not.toContain(PROXY_SECRET);

    const post = await call(port, "payments.staging.test", "/v1/payments", {
      token,
      method: "POST",
      body: '{"amount":5}',
      headers: { "content-type": "application/json" },
    });
    expect(post.status).toBe(200);
    expect(post.seen).toMatchObject({ backend: "payments", method: "POST", body: '{"amount":5}' });
  });

  it("replaces or drops identity headers a client sends itself", async () => {
    const { requestId, token } = await grant();
    const forged = {
      "x-latchkey-user": "mallory@example.com",
      "x-latchkey-grant": "forged",
      "x-latchkey-groups": "platform-admins",
      "x-latchkey-extra": "anything",
      "x-latchkey-proxy-secret": PROXY_SECRET,
      "x-forwarded-host": "scratch.test",
    };
    const ok = await call(port, "payments.staging.test", "/", { token, headers: forged });
    expect(ok.status).toBe(200);
    expect(ok.seen!.headers).toMatchObject({ "x-latchkey-user": "alice@example.com", "x-latchkey-grant": requestId, "x-latchkey-groups": "engineering" });
    for (const name of ["x-latchkey-extra", "x-latchkey-proxy-secret"]) expect(ok.seen!.headers[name], name).toBeUndefined();

    const none = await refused(port, "payments.staging.test", "/", { headers: forged });
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toMatch(/^Bearer/);
  });

  it("refuses a missing or forged credential (401) and a grant that does not cover the host or path (403)", async () => {
    const { token } = await grant();
    expect((await refused(port, "payments.staging.test", "/")).status).toBe(401);
    const [header, , signature] = token.split(".");
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...decodeJwt(token), sub: "mallory@example.com" })).toString("base64url")}.${signature}`;
    expect((await refused(port, "payments.staging.test", "/", { token: tampered })).status).toBe(401);

    const { token: scratchToken } = await grant({ targetId: "scratch", durationMinutes: 5 });
    expect((await refused(port, "payments.staging.test", "/", { token: scratchToken })).status).toBe(403);
    expect((await refused(port, "scratch.test", "/reports/daily", { token })).status).toBe(403);
    const ok = await call(port, "scratch.test", "/reports/daily?from=2026-01-01", { token: scratchToken });
    expect(ok.status).toBe(200);
    expect(ok.seen).toMatchObject({ backend: "scratch", url: "/reports/daily?from=2026-01-01" });
    for (const uri of ["/admin", "/reportsx", "/reports/../admin", "/reports/%2e%2e/admin"]) {
      expect((await refused(port, "scratch.test", uri, { token: scratchToken })).status, uri).toBe(403);
    }
  });

  it("refuses a credential the moment its grant is revoked, and lets a portal session with a grant through", async () => {
    const revoked = await grant();
    expect((await call(port, "payments.staging.test", "/", { token: revoked.token })).status).toBe(200);
    await engine.revokeGrant(alice, { requestId: revoked.requestId, reason: "done early" });
    expect((await refused(port, "payments.staging.test", "/", { token: revoked.token })).status).toBe(401);

    await grant();
    const session = randomBytes(16).toString("hex");
    await fx.db.session.create({ data: { sessionToken: session, userId: alice.id, expires: new Date(Date.now() + 3600_000) } });
    const ok = await call(port, "payments.staging.test", "/dashboard", { cookie: `theme=dark; next-auth.session-token=${session}` });
    expect(ok.status).toBe(200);
    expect(ok.seen!.headers["x-latchkey-user"]).toBe("alice@example.com");
  });

  it("the trap the file avoids is real: where Caddy sorts the directives, the header removal deletes Latchkey's identity too", async () => {
    const { token } = await grant();
    const sorted = await call(sortedPort, "payments.staging.test", "/", { token });
    expect(sorted.status).toBe(200);
    expect(sorted.seen!.headers["x-latchkey-user"]).toBeUndefined();
    expect((await call(port, "payments.staging.test", "/", { token })).seen!.headers["x-latchkey-user"]).toBe("alice@example.com");
  });

  it("refuses every request (403) from a Caddy whose proxy secret Latchkey does not know", async () => {
    const { token } = await grant();
    expect((await call(port, "payments.staging.test", "/", { token })).status).toBe(200);
    expect((await refused(wrongSecretPort, "payments.staging.test", "/", { token })).status).toBe(403);
    expect((await refused(wrongSecretPort, "payments.staging.test", "/")).status).toBe(403);
  });
});
